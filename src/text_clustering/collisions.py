"""When two labels collide, and how colliding labels are told apart.

Two labels *collide* when they have the same set of terms once lower-cased, stripped of
punctuation and of a few function words, and lightly stemmed (:func:`label_key`): "Text
editors", "text editor." and "Editors, text" all collide; "Text editors" and "Text editing"
do not. Colliding clusters are told apart by :func:`disambiguate`, which appends each one's
best-ranked keyword that its siblings' labels lack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .keywords import _stem

# Function words ignored when comparing labels (a short list on purpose: "system", "file"
# or "web" carry meaning in a label, though scikit-learn's English stop words drop them).
LABEL_STOP_WORDS = frozenset(
    {"a", "an", "and", "any", "as", "at", "by", "etc", "for", "from", "in", "into", "its"}
    | {"misc", "miscellaneous", "of", "on", "or", "other", "the", "their", "to", "various"}
    | {"with"}
)
_LABEL_WORD = re.compile(r"[^\W_]+[+#]*")  # words and numbers; keeps "c++", "c#"


def label_key(label: str) -> frozenset[str]:
    """The terms of a label that decide whether it collides with another: its words,
    lower-cased, without punctuation and :data:`LABEL_STOP_WORDS`, lightly stemmed, as a
    set (order and repeats do not count). A label of function words only keeps them."""
    words = [w.lower() for w in _LABEL_WORD.findall(label or "")]
    terms = {_stem(w) for w in words if w not in LABEL_STOP_WORDS}
    return frozenset(terms or {_stem(w) for w in words})


def labels_collide(a: str, b: str) -> bool:
    """True when two labels name the same thing for a reader: equal :func:`label_key`
    (e.g. "Text editors" / "text editor." / "Editors, text"). Blank labels collide."""
    return label_key(a) == label_key(b)


def collision_groups(labels: Mapping[int, str]) -> list[list[int]]:
    """The clusters whose labels collide (:func:`labels_collide`), as groups of two or more
    cluster ids; each group and the list sorted ascending. ``labels`` maps a cluster to its
    primary label."""
    by_key: dict[frozenset[str], list[int]] = {}
    for cluster_label in sorted(labels):
        by_key.setdefault(label_key(labels[cluster_label]), []).append(cluster_label)
    return sorted(group for group in by_key.values() if len(group) > 1)


@dataclass(frozen=True)
class Disambiguated:
    """A label made distinct: the label, the keywords appended to it, and whether it still
    collides with another (no distinguishing keyword left, or ``max_terms`` reached)."""

    label: str
    added_terms: tuple[str, ...] = ()
    collides: bool = False


def render_label(label: str, terms: Sequence[str], style: Literal["list", "parenthesis"]) -> str:
    """``label`` with ``terms`` appended: ``"fonts, truetype, dejavu"`` (``list``, for keyword
    labels) or ``"Text editors (vim, modal)"`` (``parenthesis``, for written labels)."""
    if not terms:
        return label
    if style == "list":
        return ", ".join([label, *terms]) if label else ", ".join(terms)
    return f"{label} ({', '.join(terms)})"


def disambiguate(
    labels: Mapping[int, str],
    keywords: Mapping[int, Sequence[str]],
    *,
    style: Literal["list", "parenthesis"] = "list",
    max_terms: int = 3,
) -> dict[int, Disambiguated]:
    """Make colliding labels distinct by appending keywords; every cluster of ``labels`` is
    returned, unchanged when its label collides with none.

    In rounds, while labels collide (:func:`collision_groups`) and fewer than ``max_terms``
    terms were added: each cluster of a group, in ascending order, gets its best-ranked
    keyword (``keywords[c]``, best first) whose stem is in neither its own label nor any
    sibling's current label (so two siblings never add the same term). A cluster with no
    such keyword left keeps its label and is returned with ``collides=True``.
    Deterministic: the result depends only on the inputs.
    """
    current = dict(labels)
    added: dict[int, list[str]] = {c: [] for c in labels}
    for _ in range(max(max_terms, 0)):
        groups = collision_groups(current)
        if not groups:
            break
        progressed = False
        for group in groups:
            for c in group:
                taken = label_key(current[c]).union(
                    *(label_key(current[s]) for s in group if s != c)
                )
                term = next(
                    (
                        t
                        for t in keywords.get(c, ())
                        if t and label_key(t) and not label_key(t) & taken
                    ),
                    None,
                )
                if term is None:
                    continue
                added[c].append(term)
                current[c] = render_label(labels[c], added[c], style)
                progressed = True
        if not progressed:
            break
    still = {c for group in collision_groups(current) for c in group}
    return {c: Disambiguated(current[c], tuple(added[c]), c in still) for c in sorted(labels)}
