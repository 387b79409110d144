"""Redaction of private data (text_clustering.redact): every class is found and replaced by
its placeholder, look-alikes that are not private are left alone, and the var is checked."""

import pytest
from sentinels import SENTINELS, secret_parts

from text_clustering.errors import ConfigError
from text_clustering.redact import (
    PII_CLASSES,
    PLACEHOLDERS,
    check_classes,
    detected,
    redact,
    redaction_counts,
)


@pytest.mark.parametrize(
    ("kind", "value"), [(k, v) for k, values in SENTINELS.items() for v in values]
)
def test_every_class_is_replaced_by_its_placeholder(kind, value):
    text = f"Customer wrote: my details are {value} - please help."
    out = redact(text)
    for part in secret_parts(kind, value):
        assert part not in out
    assert PLACEHOLDERS[kind] in out
    assert out.startswith("Customer wrote: my details are ")
    assert detected(text) == {kind: 1}


def test_look_alikes_are_left_alone():
    plain = [
        "version 2.4.1 of the library, released in 2019",
        "order 1234567 shipped; 42 items at 3.50 each",
        "call me at noon about ticket #88231",
        "the token ring network, a bearer bond, basic usage",
        "basic side-scrolling games, Basic Multilingual Plane, token authentication-helpers",
        "ISBN 978-3-16-148410-0",
        "time 12:30:45 and ratio 1:2",
        "skill sk-8 is fine",
    ]
    for text in plain:
        assert redact(text) == text, text


def test_a_cut_private_key_block_is_removed_to_the_end():
    text = "key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA"
    assert redact(text) == "key: [PRIVATE_KEY]"


def test_only_the_chosen_classes_are_redacted():
    text = "mail jane.sentinel@example-mail.com from 192.168.10.254"
    assert redact(text, ["ip"]) == "mail jane.sentinel@example-mail.com from [IP]"
    assert redact(text, []) == text
    assert redaction_counts(redact(text)) == {"email": 1, "ip": 1}


def test_the_var_is_checked():
    assert check_classes(None) == PII_CLASSES
    assert check_classes([]) == ()
    assert check_classes("none") == ()
    assert check_classes(["phone", "email"]) == ("email", "phone")  # applied in a fixed order
    with pytest.raises(ConfigError, match=r"unknown class.*'passport'"):
        check_classes(["email", "passport"])
    with pytest.raises(ConfigError, match="dbt var `redact` must be a list"):
        check_classes(3)
