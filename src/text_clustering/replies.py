"""Reading an LLM's replies: the JSON schemas asked for, and the lenient parsers that check a
reply is exactly what was asked (raising :class:`~text_clustering.errors.InvalidReplyError`,
which the retry policy treats as the endpoint's answer, not a transport failure)."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import InvalidReplyError
from .prompts import MAX_LABEL_CHARS

# Quotes (ASCII and typographic) and punctuation stripped from both ends of a label.
_STRIP = " \"'.,;:-\u201c\u201d\u2018\u2019"


def response_schema(n: int) -> dict[str, Any]:
    """JSON schema of a reply: ``{"labels": [exactly n strings]}``."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "cluster_labels",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "labels": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": n,
                        "maxItems": n,
                    }
                },
                "required": ["labels"],
                "additionalProperties": False,
            },
        },
    }


def relabel_schema(k: int, n: int) -> dict[str, Any]:
    """JSON schema of a relabel reply: ``{"groups": [k x {"group": i, "labels": [n]}]}``."""
    labels = {"type": "array", "items": {"type": "string"}, "minItems": n, "maxItems": n}
    group = {
        "type": "object",
        "properties": {"group": {"type": "integer"}, "labels": labels},
        "required": ["group", "labels"],
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "cluster_relabels",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "groups": {"type": "array", "items": group, "minItems": k, "maxItems": k}
                },
                "required": ["groups"],
                "additionalProperties": False,
            },
        },
    }


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def parse_labels(content: str | None, n: int) -> list[str]:
    """Read ``{"labels": [...]}`` leniently (code fences, text around the JSON) and validate.

    Raises :class:`~text_clustering.errors.InvalidReplyError` saying what is wrong when the
    reply is not exactly n usable labels.
    """
    data = _reply_json(content)
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list):
        raise InvalidReplyError('the reply has no "labels" list')
    cleaned = [clean_label(x) for x in labels if isinstance(x, str)]
    cleaned = [x for x in cleaned if x]
    if len(cleaned) != n:
        raise InvalidReplyError(f"expected {n} non-empty labels, got {len(cleaned)}")
    return cleaned


def _reply_json(content: str | None) -> Any:
    """The JSON object in a reply, found leniently (code fences, text around it)."""
    if not content or not content.strip():
        raise InvalidReplyError("empty reply")
    text = _FENCE.sub("", content.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise InvalidReplyError("no JSON object in the reply")
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidReplyError(f"malformed JSON ({exc.msg})") from None


def parse_group_labels(content: str | None, k: int, n: int) -> list[list[str]]:
    """Read a relabel reply ``{"groups": [{"group": i, "labels": [...]}, ...]}`` leniently,
    as :func:`parse_labels` does: exactly ``k`` groups of ``n`` usable labels, returned in
    group order 1..k (by the ``group`` numbers when they are 1..k, else as listed).

    Raises :class:`~text_clustering.errors.InvalidReplyError` saying what is wrong.
    """
    data = _reply_json(content)
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise InvalidReplyError('the reply has no "groups" list of objects')
    if len(groups) != k:
        raise InvalidReplyError(f"expected {k} groups, got {len(groups)}")
    numbers = [g.get("group") for g in groups]
    if sorted(x for x in numbers if isinstance(x, int)) == list(range(1, k + 1)):
        groups = sorted(groups, key=lambda g: g["group"])
    out = []
    for i, group in enumerate(groups, start=1):
        labels = group.get("labels")
        if not isinstance(labels, list):
            raise InvalidReplyError(f'group {i} has no "labels" list')
        cleaned = [x for x in (clean_label(y) for y in labels if isinstance(y, str)) if x]
        if len(cleaned) != n:
            raise InvalidReplyError(
                f"expected {n} non-empty labels for group {i}, got {len(cleaned)}"
            )
        out.append(cleaned)
    return out


def clean_label(label: str) -> str:
    """Plain, short text: no markup, quotes or newlines; at most ``MAX_LABEL_CHARS``."""
    text = re.sub(r"[`*_#>\[\]{}]", "", label)
    text = " ".join(text.split()).strip(_STRIP)
    if len(text) > MAX_LABEL_CHARS:
        text = text[: MAX_LABEL_CHARS - 1].rstrip() + "…"
    return text
