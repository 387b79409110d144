"""Density clustering of the 2-D projection with scikit-learn's DBSCAN."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sklearn.cluster import DBSCAN

from .vectors import to_numpy

NOISE = -1


def cluster(points: np.ndarray, *, eps: float = 0.3, min_samples: int = 10) -> np.ndarray:
    """Return an int32 cluster label per point, ``-1`` for noise.

    Cluster ids are renumbered by size, largest first (ties by first member), so ids are
    stable for the same input whatever order DBSCAN found the clusters in.
    """
    if points.shape[0] == 0:
        return np.zeros(0, dtype=np.int32)
    raw = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(points)
    return relabel_by_size(raw)


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber non-noise labels 0..k-1 by descending size, ties by first occurrence."""
    out = np.full(labels.shape, NOISE, dtype=np.int32)
    ids, first, counts = np.unique(labels[labels != NOISE], return_index=True, return_counts=True)
    order = sorted(range(len(ids)), key=lambda i: (-counts[i], first[i]))
    for new, i in enumerate(order):
        out[labels == ids[i]] = new
    return out


def cluster_table(projected: pa.Table, **params: float) -> pa.Table:
    """``(text_id, projection)`` -> ``(text_id, cluster_label INTEGER)``, in ``text_id`` order."""
    projected = projected.sort_by("text_id")
    labels = cluster(to_numpy(projected, "projection"), **params)  # type: ignore[arg-type]
    return pa.table(
        {"text_id": projected["text_id"], "cluster_label": pa.array(labels, pa.int32())}
    )
