"""Redaction of private data before any text leaves for the LLM endpoint.

Every prompt (cluster labels, collision relabels, topic names) is built from texts that went
through :func:`redact` first, and the keywords are counted from redacted texts, so what the
classes below detect never reaches the endpoint, a keyword, a label or an audit row. Each
match is replaced by a typed placeholder; what a prompt held in place of private data is
counted per class by :func:`redaction_counts` (never the values).

Classes (var ``redact``; all by default, ``[]`` turns redaction off), in the order they are
applied (a secret is removed before its digits could look like a phone number):

- ``private_key`` -> ``[PRIVATE_KEY]``: a PEM private-key block, ``-----BEGIN ... PRIVATE
  KEY-----`` up to its END line (or the end of the text when cut);
- ``api_key`` -> ``[API_KEY]``: keys with a known prefix: OpenAI/Anthropic ``sk-...``, AWS
  ``AKIA``/``ASIA`` + 16, GitHub ``ghp_``/``gho_``/``ghs_``/``github_pat_``, Slack
  ``xox?-``, Google ``AIza``, Stripe ``sk_live_``/``rk_live_``, and JSON web tokens;
- ``bearer_token`` -> ``Bearer [TOKEN]``: the credential after ``Bearer`` / ``Basic`` /
  ``token`` in an authorization header or text (16 or more token characters, a digit among
  them: "basic side-scrolling" is not one);
- ``email`` -> ``[EMAIL]``;
- ``card`` -> ``[CARD]``: 13-19 digits (spaces or dashes between groups allowed) that pass
  the Luhn check;
- ``ip`` -> ``[IP]``: IPv4 addresses (four numbers 0-255) and IPv6 addresses (at least
  three groups of hex digits with ``::`` or all eight groups);
- ``phone`` -> ``[PHONE]``: 9-15 digits written as a phone number: a leading ``+``, or
  groups separated by spaces, dashes, dots or a parenthesised area code (a bare run of
  digits such as an order number is left alone).

Detectors are regular expressions: they miss what does not look like the patterns above
(a name, an address, a key without a known prefix) and fire on look-alikes (a version
number ``1.2.3.4`` is an IPv4 address to them). How often they fire on the evaluation
corpora is measured in ``docs/privacy.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from .errors import ConfigError

PII_CLASSES = ("private_key", "api_key", "bearer_token", "email", "card", "ip", "phone")
PLACEHOLDERS = {
    "private_key": "[PRIVATE_KEY]",
    "api_key": "[API_KEY]",
    "bearer_token": "[TOKEN]",
    "email": "[EMAIL]",
    "card": "[CARD]",
    "ip": "[IP]",
    "phone": "[PHONE]",
}

_PATTERNS = {
    "private_key": re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?"
        r"(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)",
        re.DOTALL,
    ),
    "api_key": re.compile(
        r"(?<![A-Za-z0-9])(?:"
        r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"
        r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
        r"|xox[abposr]-[A-Za-z0-9-]{10,}"
        r"|AIza[0-9A-Za-z_-]{35}"
        r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
        r")"
    ),
    "bearer_token": re.compile(
        r"(?i)(?<![A-Za-z0-9])(bearer|basic|token)(\s*[:=]?\s+)"
        r"(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}"
    ),
    "email": re.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    ),
    "card": re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-])"),
    "ip": re.compile(
        r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
        r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.]*\d)"
        r"|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![:\w])"
        r"|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6}(?![:\w])"
        r"|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){2,7}:(?![:\w])"
    ),
    "phone": re.compile(
        r"(?<![\w+])(?:"
        r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
        r"|\(\d{2,4}\)[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,3}"
        r"|\d{2,4}(?:[ .-]\d{2,4}){2,4}"
        r")(?![\w])"
    ),
}
# A class's regex runs only on texts holding its cheap sign.
_SIGNS = {
    "private_key": lambda t: "PRIVATE KEY" in t,
    "api_key": lambda t: any(
        s in t for s in ("sk-", "_live_", "_test_", "AKIA", "ASIA", "gh", "xox", "AIza", "eyJ")
    ),
    "bearer_token": lambda t: any(s in t.lower() for s in ("bearer", "basic", "token")),
    "email": lambda t: "@" in t,
    "card": lambda t: _digits_at_least(t, 13),
    "ip": lambda t: "." in t or ":" in t,
    "phone": lambda t: _digits_at_least(t, 9),
}


def _digits_at_least(text: str, n: int) -> bool:
    count = 0
    for ch in text:
        if ch.isdigit():
            count += 1
            if count >= n:
                return True
    return False


def _luhn(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return total % 10 == 0


def _phone_digits(match: str) -> bool:
    n = sum(ch.isdigit() for ch in match)
    return 9 <= n <= 15


def check_classes(value: object, name: str = "redact") -> tuple[str, ...]:
    """Var ``redact`` as a tuple of known classes (``[]``: off); ConfigError otherwise."""
    if isinstance(value, str):
        value = [] if value.strip().lower() in ("", "none", "off", "false") else [value]
    if value is None:
        return PII_CLASSES
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"dbt var `{name}` must be a list of classes to redact before text is sent to the "
            f"LLM (any of {', '.join(PII_CLASSES)}; [] turns redaction off), got {value!r}."
        )
    unknown = [v for v in value if v not in PII_CLASSES]
    if unknown:
        raise ConfigError(
            f"dbt var `{name}` has unknown class(es) {', '.join(map(repr, unknown))}: use any "
            f"of {', '.join(PII_CLASSES)}, or [] to turn redaction off."
        )
    return tuple(c for c in PII_CLASSES if c in value)  # applied in a fixed order


def redact(text: str, classes: Sequence[str] = PII_CLASSES) -> str:
    """``text`` with every match of ``classes`` replaced by its placeholder."""
    return _redact(text or "", tuple(classes))


@lru_cache(maxsize=65536)
def _redact(text: str, classes: tuple[str, ...]) -> str:
    for name in classes:
        if _SIGNS[name](text):
            text = _replace(name, text)
    return text


def _replace(name: str, text: str) -> str:
    placeholder = PLACEHOLDERS[name]
    if name == "bearer_token":
        return _PATTERNS[name].sub(lambda m: f"{m.group(1)}{m.group(2)}{placeholder}", text)
    if name == "card":
        return _PATTERNS[name].sub(lambda m: placeholder if _luhn(m[0]) else m[0], text)
    if name == "phone":
        return _PATTERNS[name].sub(lambda m: placeholder if _phone_digits(m[0]) else m[0], text)
    return _PATTERNS[name].sub(placeholder, text)


def redact_all(texts: Iterable[str], classes: Sequence[str] = PII_CLASSES) -> list[str]:
    """:func:`redact` of every text (the same ``classes``)."""
    key = tuple(classes)
    return [_redact(t or "", key) if key else (t or "") for t in texts]


def detected(text: str, classes: Sequence[str] = PII_CLASSES) -> dict[str, int]:
    """How many matches of each class ``text`` holds (classes applied in order, as
    :func:`redact` does): for measuring how often the detectors fire."""
    out: dict[str, int] = {}
    text = text or ""
    for name in classes:
        if not _SIGNS[name](text):
            continue
        redacted = _replace(name, text)
        n = redacted.count(PLACEHOLDERS[name]) - text.count(PLACEHOLDERS[name])
        if n:
            out[name] = n
        text = redacted
    return out


def redaction_counts(prompt: str, classes: Sequence[str] = PII_CLASSES) -> dict[str, int]:
    """Per class, the placeholders a prompt built from redacted texts holds (a placeholder
    written literally in an input text counts too)."""
    out = {name: prompt.count(PLACEHOLDERS[name]) for name in classes}
    return {name: n for name, n in out.items() if n}
