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
from typing import Any, Literal

from .clustering import NOISE
from .collisions import collision_groups, disambiguate, label_key, render_label
from .keywords import KEYWORD_MODEL_NAME
from .log import log
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


NOT_ASKED = "not asked: dry run (var llm_dry_run) or no reply recorded"


@dataclass(frozen=True)
class Candidate:
    """What naming knows of one cluster or topic of a layer: its prompt's cache key (None:
    no prompt, e.g. noise), its keyword labels, its top keywords (best first), and which of
    the reply's label lists is its own (a prompt may name several siblings)."""

    request_hash: str | None
    keyword_labels: Sequence[str]
    top_keywords: Sequence[str]
    reply_index: int = 0


@dataclass(frozen=True)
class Layer:
    """One layer to name (level 0: the clusters): its candidates and its examples
    (representatives' texts, most central first), by id."""

    level: int
    candidates: Mapping[int, Candidate]
    examples: Mapping[int, Sequence[str]]


def name_layer(
    layer: Layer,
    replies: Mapping[str, Mapping[str, Any]],
    settings: LLMSettings,
    *,
    online: bool,
    default_label: str,
) -> dict[int, dict[str, Any]]:
    """Every id of ``layer`` with its labels and their source, decided once:

    - ``noise`` (id -1): ``default_label``;
    - ``keywords`` (``online`` False: no LLM configured): its keyword labels;
    - ``llm``: the ``ok`` reply to its prompt in ``replies`` (request_hash -> reply row);
    - ``default``: an LLM is configured but gave no valid labels (label_status and
      label_error say why);

    then labels that collide are made distinct (:func:`make_distinct`, after the LLM's joint
    relabel of each collision group when ``replies`` has it). Returns per id the columns
    of int_clusters_named (without the id).
    """
    default = [default_label] * settings.n
    rows: dict[int, dict[str, Any]] = {}
    first: dict[int, list[str]] = {}
    for c in sorted(layer.candidates):
        item = layer.candidates[c]
        reply = replies.get(item.request_hash or "")
        row: dict[str, Any] = {"request_hash": item.request_hash}
        if c == NOISE:
            row.update(label_source="noise", label_status="noise", model_name="default_label")
        elif not online:
            first[c] = list(item.keyword_labels)
            row.update(label_source="keywords", label_status="ok", model_name=KEYWORD_MODEL_NAME)
        elif (
            reply is not None
            and reply["status"] == "ok"
            and len(reply["labels"]) > item.reply_index
        ):
            first[c] = list(reply["labels"][item.reply_index])
            row.update(label_source="llm", label_status="ok", model_name=reply["model_name"])
        else:
            status, error = (reply["status"], reply["error"]) if reply else ("not_asked", NOT_ASKED)
            row.update(label_source="default", label_status=status, label_error=error)
            row.update(model_name="default_label")
        rows[c] = {**row, "summary_labels": first.get(c, default), "first_labels": first.get(c)}
    _distinct(rows, first, layer, replies, settings, online)
    return rows


def _distinct(
    rows: dict[int, dict[str, Any]],
    first: dict[int, list[str]],
    layer: Layer,
    replies: Mapping[str, Mapping[str, Any]],
    settings: LLMSettings,
    online: bool,
) -> None:
    """Distinct labels for the labelled ids of ``rows`` (updated in place): the LLM's
    relabel of a collision group when distinct, else keywords appended, else the number."""
    proposals: dict[int, list[str]] = {}
    for group in relabel_requests(first, layer.examples, settings) if online else []:
        answer = replies.get(group.request_hash)
        status = answer["status"] if answer else "not_asked"
        ok = answer is not None and status == "ok" and len(answer["labels"]) == len(group.group)
        for rank, c in enumerate(group.group):
            rows[c].update(relabel_request_hash=group.request_hash, relabel_status=status)
            if ok:
                proposals[c] = list(answer["labels"][rank])  # type: ignore[index]
    keywords = {c: list(layer.candidates[c].top_keywords or []) for c in first}
    style: Literal["list", "parenthesis"] = "parenthesis" if online else "list"
    result = make_distinct(first, keywords, relabels=proposals, style=style)
    for c, distinct in result.items():
        rows[c].update(
            summary_labels=distinct.labels,
            collision_group=distinct.collision_group,
            distinct_by=distinct.distinct_by,
            added_terms=list(distinct.added_terms),
        )
        if rows[c].get("relabel_status") == "ok" and distinct.distinct_by != "llm_relabel":
            rows[c]["relabel_status"] = "collided"
    _log_distinct(layer.level, result)


def _log_distinct(level: int, result: Mapping[int, DistinctLabels]) -> None:
    what = "clusters" if level == 0 else f"level-{level} topics"
    counts: dict[str, int] = {}
    for distinct in result.values():
        if distinct.distinct_by:
            counts[distinct.distinct_by] = counts.get(distinct.distinct_by, 0) + 1
    if not counts:
        log(f"labels: {len(result)} {what}, no two labels collide")
        return
    collided = sum(1 for d in result.values() if d.collision_group is not None)
    log(
        f"labels: {collided} of {len(result)} {what} had colliding labels; made distinct by "
        + ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
    )
    numbered = [c for c, d in result.items() if d.distinct_by == "cluster_number"]
    if numbered:
        log(
            f"labels of {what} {numbered} still collided after appending keywords (no "
            "distinguishing keyword left): their number was appended"
        )
