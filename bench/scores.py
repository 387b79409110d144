"""Agreement of a clustering with reference labels, computed the same way for every method."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    normalized_mutual_info_score,
)

NOISE = -1


def scores(reference: Sequence[Any], predicted: Sequence[int]) -> dict[str, float | int | None]:
    """Clusters found, noise share, the largest cluster's share, NMI, ARI and AMI against
    ``reference`` (noise counted as its own group, as one more cluster label), and NMI / ARI
    on the non-noise texts only.
    AMI is NMI corrected for chance: NMI grows with the number of clusters even when they
    are random, AMI does not."""
    ref = np.asarray([str(r) for r in reference])
    got = np.asarray(predicted, dtype=np.int64)
    if ref.shape != got.shape:
        raise ValueError(f"{ref.size} reference labels for {got.size} predictions")
    kept = got != NOISE
    out: dict[str, float | int | None] = {
        "n_texts": int(got.size),
        "n_clusters": len(set(got[kept].tolist())),
        "noise_share": float((~kept).mean()) if got.size else None,
        "largest_cluster_share": float(np.bincount(got[kept]).max() / got.size)
        if kept.any()
        else None,
        "nmi": float(normalized_mutual_info_score(ref, got)),
        "ari": float(adjusted_rand_score(ref, got)),
        "ami": float(adjusted_mutual_info_score(ref, got)),
        "nmi_excluding_noise": None,
        "ari_excluding_noise": None,
    }
    if kept.any():
        out["nmi_excluding_noise"] = float(normalized_mutual_info_score(ref[kept], got[kept]))
        out["ari_excluding_noise"] = float(adjusted_rand_score(ref[kept], got[kept]))
    return out


def kmeans_oracle(
    embeddings: np.ndarray, reference: Sequence[Any], *, random_state: int = 42
) -> dict[str, float | int | None]:
    """KMeans with k = the number of reference classes (an oracle: it is told k) on the
    same embeddings; its scores and fit seconds."""
    from sklearn.cluster import KMeans

    k = len(set(reference))
    start = time.perf_counter()
    labels = KMeans(n_clusters=k, random_state=random_state, n_init=10).fit_predict(embeddings)
    seconds = time.perf_counter() - start
    return {**scores(reference, labels.tolist()), "k": k, "fit_seconds": seconds}
