"""Naming clusters, the pure part: which clusters' labels collide and the prompt that asks
for them again together, and how colliding labels are finally made distinct.

Two labels *collide* when a reader would take them for the same thing
(:func:`~text_clustering.keywords.labels_collide`). Colliding LLM labels are asked again in
one prompt per collision group (:func:`relabel_requests`); whatever still collides gets
distinguishing keywords appended, then its cluster number (:func:`make_distinct`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .keywords import collision_groups, disambiguate, label_key, render_label
from .prompts import LLMSettings, build_relabel_prompt, request_hash


@dataclass(frozen=True)
class RelabelRequest:
    """One prompt asking for distinct labels of the clusters of a collision group:
    ``group`` (ascending cluster ids, its id is the first), the prompt, its cache key and
    the examples it shows per sibling."""

    group: tuple[int, ...]
    user_prompt: str
    request_hash: str
    shown: tuple[int, ...]


def relabel_requests(
    first: Mapping[int, Sequence[str]],
    examples: Mapping[int, Sequence[str]],
    settings: LLMSettings,
) -> list[RelabelRequest]:
    """A :class:`RelabelRequest` per group of clusters whose first labels (``first[c][0]``)
    collide, showing each sibling's current labels and ``examples`` (representatives, most
    central first). Deterministic: the same inputs give the same prompts and keys."""
    out = []
    for group in collision_groups({c: labels[0] for c, labels in first.items()}):
        siblings = [("; ".join(first[c]), examples.get(c, [])) for c in group]
        prompt, shown = build_relabel_prompt(siblings, settings)
        key = request_hash(prompt, settings)
        out.append(RelabelRequest(tuple(group), prompt, key, tuple(shown)))
    return out


@dataclass(frozen=True)
class DistinctLabels:
    """A cluster's final labels and how they were made distinct.

    ``distinct_by``: None (its first label collided with none), ``llm_relabel``,
    ``keywords`` (distinguishing keywords appended to its first label) or
    ``cluster_number`` (nothing else told it apart).
    """

    labels: list[str]
    collision_group: int | None = None
    distinct_by: str | None = None
    added_terms: tuple[str, ...] = ()


def make_distinct(
    first: Mapping[int, Sequence[str]],
    keywords: Mapping[int, Sequence[str]],
    *,
    relabels: Mapping[int, Sequence[str]] | None = None,
    style: Literal["list", "parenthesis"] = "list",
    max_terms: int = 3,
) -> dict[int, DistinctLabels]:
    """Distinct labels for every cluster of ``first`` (its labels, the first one primary).

    1. Clusters whose primary labels collide form groups. A group takes its ``relabels``
       (new labels per sibling) when every sibling has them and their primary labels
       collide neither with each other nor with any other cluster's current label.
    2. What still collides gets keywords appended
       (:func:`~text_clustering.keywords.disambiguate`, in ``style``).
    3. What collides even then gets ``(cluster <id>)`` appended.

    Only primary labels are compared and changed; the result has no two clusters whose
    primary labels collide.
    """
    relabels = relabels or {}
    current = {c: list(labels) for c, labels in first.items()}
    groups = collision_groups({c: labels[0] for c, labels in current.items()})
    group_of = {c: group[0] for group in groups for c in group}
    by: dict[int, str | None] = dict.fromkeys(current)
    for group in groups:
        proposal = [relabels.get(c) for c in group]
        if not all(p and len(p) == len(current[c]) for p, c in zip(proposal, group, strict=True)):
            continue
        keys = [label_key(p[0]) for p in proposal]  # type: ignore[index]
        others = {label_key(current[c][0]) for c in current if c not in group}
        if len(set(keys)) == len(keys) and not set(keys) & others:
            for c, p in zip(group, proposal, strict=True):
                current[c], by[c] = list(p), "llm_relabel"  # type: ignore[arg-type]
    fixed = disambiguate(
        {c: labels[0] for c, labels in current.items()},
        keywords,
        style=style,
        max_terms=max_terms,
    )
    added: dict[int, tuple[str, ...]] = {}
    for c, result in fixed.items():
        if result.added_terms:
            current[c][0], by[c], added[c] = result.label, "keywords", result.added_terms
        if result.collides:
            current[c][0] = render_label(current[c][0], [f"cluster {c}"], "parenthesis")
            by[c] = "cluster_number"
    return {
        c: DistinctLabels(current[c], group_of.get(c), by[c], added.get(c, ()))
        for c in sorted(current)
    }
