"""Numbers that say whether a clustering is any good.

Without reference labels: cluster count, noise share, size distribution, and the silhouette
of the projection (noise excluded). With reference labels (var reference_label_column): NMI,
ARI and purity, once with noise counted as its own group and once on the non-noise texts only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .cluster import NOISE

SILHOUETTE_SAMPLE = 10_000  # silhouette is O(n^2): above this, a fixed-seed sample

METRICS_SCHEMA = pa.schema(
    [
        ("n_texts", pa.int64()),
        ("n_clusters", pa.int64()),
        ("noise_share", pa.float64()),
        ("largest_cluster_share", pa.float64()),
        ("median_cluster_size", pa.float64()),
        ("silhouette", pa.float64()),
        ("nmi", pa.float64()),
        ("ari", pa.float64()),
        ("purity", pa.float64()),
        ("nmi_excluding_noise", pa.float64()),
        ("ari_excluding_noise", pa.float64()),
        ("purity_excluding_noise", pa.float64()),
    ]
)


def purity(reference: Sequence[Any], labels: Sequence[int]) -> float:
    """Share of texts whose cluster's most common reference label is their own."""
    if not len(labels):
        return float("nan")
    by_cluster: dict[int, Counter] = {}
    for r, c in zip(reference, labels, strict=True):
        by_cluster.setdefault(int(c), Counter())[r] += 1
    return sum(max(counts.values()) for counts in by_cluster.values()) / len(labels)


def clustering_metrics(
    labels: np.ndarray,
    points: np.ndarray,
    reference: Sequence[Any] | None = None,
    *,
    random_state: int = 42,
) -> dict[str, float | int | None]:
    """The metrics of one clustering: ``labels`` ``(n,)`` (-1 = noise), ``points`` ``(n, 2)``,
    optional ``reference`` labels ``(n,)``. Undefined values (e.g. silhouette with fewer
    than two clusters) are None."""
    from sklearn.metrics import (  # ~2 s to import: only when metrics are computed
        adjusted_rand_score,
        normalized_mutual_info_score,
        silhouette_score,
    )

    n = int(labels.size)
    clustered = labels != NOISE
    sizes = np.array(sorted(Counter(labels[clustered].tolist()).values()), dtype=float)
    out: dict[str, float | int | None] = {
        "n_texts": n,
        "n_clusters": int(sizes.size),
        "noise_share": float((~clustered).mean()) if n else None,
        "largest_cluster_share": float(sizes.max() / n) if sizes.size else None,
        "median_cluster_size": float(np.median(sizes)) if sizes.size else None,
        "silhouette": None,
    }
    # float64: scikit-learn computes float32 distances in slow upcast chunks (2 s vs 0.3 s)
    kept_points, kept_labels = points[clustered].astype(np.float64), labels[clustered]
    if sizes.size >= 2 and kept_labels.size > sizes.size:
        sample = min(SILHOUETTE_SAMPLE, kept_labels.size)
        out["silhouette"] = float(
            silhouette_score(
                kept_points, kept_labels, sample_size=sample, random_state=random_state
            )
        )
    for suffix, mask in (("", np.ones(n, dtype=bool)), ("_excluding_noise", clustered)):
        ref = [r for r, keep in zip(reference or [], mask, strict=False) if keep]
        got = labels[mask]
        defined = reference is not None and got.size > 0
        out[f"nmi{suffix}"] = float(normalized_mutual_info_score(ref, got)) if defined else None
        out[f"ari{suffix}"] = float(adjusted_rand_score(ref, got)) if defined else None
        out[f"purity{suffix}"] = purity(ref, got) if defined else None
    return out


def metrics_table(
    texts: pa.Table, *, reference_column: str | None = None, random_state: int = 42
) -> pa.Table:
    """``(text_id, projection, cluster_label[, reference])`` of the projected texts -> one row."""
    from .vectors import to_numpy

    texts = texts.sort_by("text_id")
    labels = np.asarray(texts["cluster_label"].to_numpy(zero_copy_only=False), dtype=np.int32)
    points = to_numpy(texts, "projection") if texts.num_rows else np.zeros((0, 2), np.float32)
    reference = texts[reference_column].to_pylist() if reference_column else None
    row = clustering_metrics(labels, points, reference, random_state=random_state)
    return pa.Table.from_pylist([row], schema=METRICS_SCHEMA)
