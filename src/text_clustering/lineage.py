"""Stable cluster ids across refits: new clusters matched to the previous build's by members.

After a refit the clustering numbers its clusters afresh. :func:`match_clusters` gives each
new cluster the id of the previous cluster it continues, and a never-used id otherwise:

- only texts present in both builds count; ``overlap[c, p]`` is how many of them are in new
  cluster ``c`` and were in previous cluster ``p`` (noise on either side counts for none);
- ``c`` continues ``p`` when most of ``p``'s texts still present are in ``c`` AND most of
  ``c``'s texts that existed before were in ``p`` (both shares >= ``min_share``, 0.5): a
  majority both ways, so a cluster that only grew or shrank keeps its id, a merge keeps the
  id of its main part and a split the id of its main piece. Ties (two candidates with equal
  overlap) are broken by a maximum-overlap assignment (Hungarian), then by the lower id;
- every other new cluster gets the next id never used: ``next_id`` is the high-water mark
  carried from build to build (one above the largest id ever given), so an id never comes
  back for a different cluster.

It also returns the lineage: one row per (previous, new) pair sharing texts, with the
shares and what happened - ``survived`` (the matched pair), ``merged_into`` (a previous
cluster that did not survive, whose texts went to this new one), ``split_from`` (texts of a
surviving previous cluster that went to another new cluster), plus ``disappeared`` (a
previous cluster none of whose texts is in a cluster now) and ``new`` (a new cluster with no
text of a previous one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NOISE = -1
MIN_SHARE = 0.5


@dataclass(frozen=True)
class Match:
    """What :func:`match_clusters` found."""

    ids: dict[int, int]  # new cluster (the fit's number) -> its stable id
    next_id: int  # one above the largest id ever given
    lineage: list[dict[str, Any]]


def match_clusters(
    previous: np.ndarray,
    current: np.ndarray,
    *,
    next_id: int,
    existed: np.ndarray | None = None,
    min_share: float = MIN_SHARE,
) -> Match:
    """Stable ids for the clusters of ``current`` (the new fit's labels) from ``previous``
    (the previous build's stable labels of the same texts; ``-1`` = noise, or a text that
    did not exist); ``existed``: which texts the previous build had (default: those with a
    previous cluster). ``next_id``: the previous high-water mark (at least one above every
    previous id)."""
    previous = np.asarray(previous, dtype=np.int64)
    current = np.asarray(current, dtype=np.int64)
    new_ids = np.unique(current[current != NOISE])
    old_ids = np.unique(previous[previous != NOISE])
    next_id = max(int(next_id), int(old_ids.max()) + 1 if old_ids.size else 0)
    both = (previous != NOISE) & (current != NOISE)
    overlap = np.zeros((new_ids.size, old_ids.size), dtype=np.int64)
    if both.any():
        rows = np.searchsorted(new_ids, current[both])
        cols = np.searchsorted(old_ids, previous[both])
        np.add.at(overlap, (rows, cols), 1)
    old_present = np.bincount(
        np.searchsorted(old_ids, previous[previous != NOISE]), minlength=old_ids.size
    )
    # a new cluster's texts that existed before (noise then included: they were there)
    existed = previous != NOISE if existed is None else np.asarray(existed, dtype=bool)
    new_known = np.zeros(new_ids.size, dtype=np.int64)
    mask = existed & (current != NOISE)
    if mask.any():
        new_known = np.bincount(np.searchsorted(new_ids, current[mask]), minlength=new_ids.size)
    share_old = overlap / np.maximum(old_present, 1)[None, :]
    share_new = overlap / np.maximum(new_known, 1)[:, None]
    candidate = (overlap > 0) & (share_old >= min_share) & (share_new >= min_share)
    pairs: dict[int, int] = {}
    if candidate.any():
        from scipy.optimize import linear_sum_assignment

        weight = np.where(candidate, overlap, 0)
        rows, cols = linear_sum_assignment(-weight)
        pairs = {int(r): int(c) for r, c in zip(rows, cols, strict=True) if candidate[r, c]}
    ids: dict[int, int] = {}
    for r, new in enumerate(new_ids.tolist()):
        if r in pairs:
            ids[new] = int(old_ids[pairs[r]])
        else:
            ids[new], next_id = next_id, next_id + 1
    survivors = {int(old_ids[c]) for c in pairs.values()}
    lineage: list[dict[str, Any]] = []
    for i, j in zip(*np.nonzero(overlap), strict=True):
        old, new = int(old_ids[j]), ids[int(new_ids[i])]
        if pairs.get(int(i)) == int(j):
            kind = "survived"
        elif old not in survivors:
            kind = "merged_into"
        else:
            kind = "split_from"
        lineage.append(_row(old, new, kind, overlap[i, j], share_old[i, j], share_new[i, j]))
    for j in np.flatnonzero(overlap.sum(axis=0) == 0):
        lineage.append(_row(int(old_ids[j]), None, "disappeared", 0, 0.0, 0.0))
    for i in np.flatnonzero(overlap.sum(axis=1) == 0):
        lineage.append(_row(None, ids[int(new_ids[i])], "new", 0, 0.0, 0.0))
    lineage.sort(key=lambda x: (x["old_cluster"] is None, x["old_cluster"], x["new_cluster"] or -1))
    return Match(ids=ids, next_id=next_id, lineage=lineage)


def _row(
    old: int | None, new: int | None, kind: str, overlap: Any, share_old: Any, share_new: Any
) -> dict[str, Any]:
    return {
        "old_cluster": old,
        "new_cluster": new,
        "change": kind,
        "n_texts": int(overlap),
        "share_of_old": float(share_old),
        "share_of_new": float(share_new),
    }


def relabel(labels: np.ndarray, ids: dict[int, int]) -> np.ndarray:
    """``labels`` with every cluster number replaced by its stable id (noise stays -1)."""
    out = np.asarray(labels, dtype=np.int64).copy()
    clustered = out != NOISE
    if clustered.any():
        keys = np.array(sorted(ids), dtype=np.int64)
        values = np.array([ids[k] for k in keys.tolist()], dtype=np.int64)
        out[clustered] = values[np.searchsorted(keys, out[clustered])]
    return out
