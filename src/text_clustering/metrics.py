"""Numbers that say whether a clustering is any good.

Without reference labels: cluster count, noise share, size distribution, and the silhouette
of the projection (noise excluded). With reference labels (var reference_label_column): NMI,
ARI and purity, once with noise counted as its own group and once on the non-noise texts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from .clustering import NOISE

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


def purity(reference: Sequence[Any], labels: Sequence[int] | np.ndarray) -> float:
    """Share of texts whose cluster's most common reference label is their own."""
    if not len(labels):
        return float("nan")
    return _purity(_contingency(reference, labels))


def _purity(table: np.ndarray) -> float:
    return float(table.max(axis=0).sum() / table.sum())


# NMI, ARI and the silhouette as scikit-learn defines them (its defaults: arithmetic-mean
# NMI, Euclidean silhouette of a fixed-seed sample), in NumPy: importing sklearn.metrics
# costs ~2.5 s of every build whose clusters changed. Tested against scikit-learn.


def _contingency(reference: Sequence[Any], labels: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Counts of (reference class, cluster) pairs: ``(n_classes, n_clusters)``."""
    _, classes = np.unique(np.asarray([str(r) for r in reference]), return_inverse=True)
    _, clusters = np.unique(np.asarray(labels), return_inverse=True)
    table = np.zeros((classes.max(initial=-1) + 1, clusters.max(initial=-1) + 1))
    np.add.at(table, (classes, clusters), 1)
    return table


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(reference: Sequence[Any], labels: Sequence[Any]) -> float:
    """Normalised mutual information (arithmetic mean of the two entropies)."""
    return _nmi(_contingency(reference, labels))


def _nmi(table: np.ndarray) -> float:
    if table.shape[0] == table.shape[1] <= 1:
        return 1.0  # one class and one cluster (or nothing): identical partitions
    n = table.sum()
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    i, j = np.nonzero(table)
    nij = table[i, j]
    mutual = float((nij / n * (np.log(nij * n) - np.log(rows[i] * cols[j]))).sum())
    normaliser = max((_entropy(rows) + _entropy(cols)) / 2, np.finfo(np.float64).eps)
    return max(mutual, 0.0) / normaliser


def ari(reference: Sequence[Any], labels: Sequence[Any]) -> float:
    """Adjusted Rand index, from the pair confusion matrix."""
    return _ari(_contingency(reference, labels))


def _ari(table: np.ndarray) -> float:
    n = table.sum()
    sum_squares = float((table**2).sum())
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    tp = sum_squares - n
    fp = float((cols**2).sum()) - sum_squares
    fn = float((rows**2).sum()) - sum_squares
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return float(2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)))


def silhouette(
    points: np.ndarray, labels: np.ndarray, *, sample_size: int, random_state: int
) -> float:
    """Mean silhouette (Euclidean) of ``sample_size`` points drawn as scikit-learn's
    ``silhouette_score(..., sample_size, random_state)`` draws them; a point alone in its
    cluster scores 0. Distances are summed per cluster in blocks of rows (bounded memory)."""
    if labels.size > sample_size:
        chosen = np.random.RandomState(random_state).permutation(labels.size)[:sample_size]
        points, labels = points[chosen], labels[chosen]
    points = np.asarray(points, dtype=np.float64)
    order = np.argsort(labels, kind="stable")
    points, labels = points[order], labels[order]
    clusters, starts, counts = np.unique(labels, return_index=True, return_counts=True)
    own = np.searchsorted(clusters, labels)
    scores = np.zeros(labels.size)
    squared = (points**2).sum(axis=1)
    buffer = np.empty((min(1024, labels.size), labels.size))  # reused: no fresh 80 MB per block
    for lo in range(0, labels.size, 1024):
        block = slice(lo, min(lo + 1024, labels.size))
        d2 = buffer[: block.stop - lo]  # |a|^2 + |b|^2 - 2 a.b, in place
        np.matmul(points[block], points.T, out=d2)
        d2 *= -2.0
        d2 += squared[None, :]
        d2 += squared[block, None]
        np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)
        sums = np.add.reduceat(d2, starts, axis=1)
        rows = np.arange(sums.shape[0])
        mates = counts[own[block]] - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            intra = sums[rows, own[block]] / mates
        means = sums / counts[None, :]
        means[rows, own[block]] = np.inf
        inter = means.min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = (inter - intra) / np.maximum(intra, inter)
        scores[block] = np.where(mates > 0, np.nan_to_num(value), 0.0)
    return float(scores.mean())


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
    n = int(labels.size)
    clustered = labels != NOISE
    sizes = np.sort(np.unique(labels[clustered], return_counts=True)[1]).astype(float)
    out: dict[str, float | int | None] = {
        "n_texts": n,
        "n_clusters": int(sizes.size),
        "noise_share": float((~clustered).mean()) if n else None,
        "largest_cluster_share": float(sizes.max() / n) if sizes.size else None,
        "median_cluster_size": float(np.median(sizes)) if sizes.size else None,
        "silhouette": None,
    }
    kept_points, kept_labels = points[clustered], labels[clustered]
    if sizes.size >= 2 and kept_labels.size > sizes.size:
        out["silhouette"] = silhouette(
            kept_points, kept_labels, sample_size=SILHOUETTE_SAMPLE, random_state=random_state
        )
    for suffix, mask in (("", np.ones(n, dtype=bool)), ("_excluding_noise", clustered)):
        ref = [r for r, keep in zip(reference or [], mask, strict=False) if keep]
        got = labels[mask]
        defined = reference is not None and got.size > 0
        table = _contingency(ref, got) if defined else None  # shared by NMI, ARI, purity
        out[f"nmi{suffix}"] = _nmi(table) if table is not None else None
        out[f"ari{suffix}"] = _ari(table) if table is not None else None
        out[f"purity{suffix}"] = _purity(table) if table is not None else None
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


# --- label quality: how well a label retrieves its own texts ---------------------------------

LABEL_MAX_POSITIVES = 500  # a topic's texts scored per label (a fixed-seed sample above)
LABEL_MAX_NEGATIVES = 5000  # other texts scored per label (a fixed-seed sample above)


def label_retrieval_auc(
    text_vectors: np.ndarray,
    text_topics: np.ndarray,
    label_vectors: np.ndarray,
    label_topics: np.ndarray,
    *,
    max_positives: int = LABEL_MAX_POSITIVES,
    max_negatives: int = LABEL_MAX_NEGATIVES,
    random_state: int = 42,
) -> np.ndarray:
    """Per label, the ROC AUC of ranking its own topic's texts above the other texts by
    cosine similarity to the label: the probability that a random text of the topic is
    closer to the label than a random text of another topic (ties count half). 1.0: the
    label's own texts all come first; ~0.5: the label says nothing about them.

    ``text_vectors`` ``(n, d)`` and ``label_vectors`` ``(k, d)`` embeddings of one model
    (normalised here); ``text_topics`` ``(n,)`` each text's topic; ``label_topics`` ``(k,)``
    the topic each label names. Texts of topics without a label (noise) count as others.
    Large inputs are sampled, from one permutation seeded by ``random_state`` (the same
    inputs give the same numbers): a topic's first ``max_positives`` texts in it, and as
    others the texts of other topics among its first ``max_negatives``. Returns ``(k,)``
    float64, NaN for a label whose topic has no text or that has no other text to compare
    with. Cost: one ``(max_negatives, d) @ (d, k)`` product and ``max_positives`` rows per
    label, whatever ``n``.
    """
    text_topics = np.asarray(text_topics)
    label_topics = np.asarray(label_topics)
    out = np.full(label_topics.size, np.nan)
    if not text_topics.size or not label_topics.size:
        return out
    labels = _unit(np.asarray(label_vectors, dtype=np.float32))
    order = np.random.RandomState(random_state).permutation(text_topics.size)
    pool = order[:max_negatives]
    pool_topics = text_topics[pool]
    pool_scores = _unit(np.asarray(text_vectors[pool], dtype=np.float32)) @ labels.T
    shuffled = text_topics[order]
    grouped = np.argsort(shuffled, kind="stable")  # by topic, permutation order within
    grouped_topics = shuffled[grouped]
    for j, topic in enumerate(label_topics.tolist()):
        lo = int(np.searchsorted(grouped_topics, topic, side="left"))
        hi = int(np.searchsorted(grouped_topics, topic, side="right"))
        positives = np.sort(order[grouped[lo : min(hi, lo + max_positives)]])
        negatives = pool_scores[pool_topics != topic, j]
        if positives.size and negatives.size:
            own = _unit(np.asarray(text_vectors[positives], dtype=np.float32)) @ labels[j]
            out[j] = _auc(own, negatives)
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney ROC AUC of ``positive`` over ``negative`` scores, ties counting half."""
    negative = np.sort(negative)
    below = np.searchsorted(negative, positive, side="left")
    tied = np.searchsorted(negative, positive, side="right") - below
    return float((below + 0.5 * tied).sum() / (positive.size * negative.size))


def layer_means(auc: np.ndarray, sizes: np.ndarray) -> tuple[float | None, float | None]:
    """``(mean, size-weighted mean)`` of the defined (non-NaN) AUCs of one layer; None when
    no label of the layer was scored."""
    auc = np.asarray(auc, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    scored = ~np.isnan(auc)
    if not scored.any():
        return None, None
    weights = sizes[scored]
    weighted = float((auc[scored] * weights).sum() / weights.sum()) if weights.sum() > 0 else None
    return float(auc[scored].mean()), weighted
