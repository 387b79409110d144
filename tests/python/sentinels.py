"""Sentinel private values, one list per class of text_clustering.redact: placed in texts by
the privacy tests, which check that none of them reaches the LLM endpoint or the outputs."""

# As they appear in tickets and chat logs.
SENTINELS = {
    "email": ["jane.sentinel@example-mail.com", "ops+alerts@corp.example.co.uk"],
    "phone": ["+44 20 7946 0958", "(555) 867-5309", "555-867-5309", "+1-202-555-0143"],
    "card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881"],
    "ip": ["192.168.10.254", "2001:db8:85a3::8a2e:370:7334", "fe80::1ff:fe23:4567:890a"],
    "api_key": [
        "sk-proj-Sentinel0123456789abcdefXYZ",
        "AKIASENTINEL12345678",
        "ghp_Sentinel0123456789abcdefghijklmnopqr",
        "xoxb-123456789012-sentinelToken",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZW50aW5lbCJ9.c2VudGluZWwtc2lnbmF0dXJl",
    ],
    "bearer_token": ["Bearer sentinelTokenValue0123456789"],
    "private_key": [
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEsentinelKEYmaterial0123\nabcDEF==\n"
        "-----END RSA PRIVATE KEY-----"
    ],
}
SECRET_PARTS = {  # what must not survive of each sentinel
    "bearer_token": ["sentinelTokenValue0123456789"],
    "private_key": ["MIIEsentinelKEYmaterial0123", "abcDEF=="],
}


def secret_parts(kind: str, value: str) -> list[str]:
    """What must not survive of ``value``: all of it, or its secret part."""
    return SECRET_PARTS.get(kind, [value])
