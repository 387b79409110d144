"""2-D projection of embeddings with UMAP (deterministic: fixed ``random_state``)."""

from __future__ import annotations

import sys
import time

import numpy as np
import pyarrow as pa

from ._numba import configure_numba_cache
from .vectors import to_arrow, to_numpy

# Below this many distinct points UMAP's spectral layout is unstable; PCA is used instead.
MIN_UMAP_ROWS = 8


def project(
    vectors: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.0,
    metric: str = "cosine",
    random_state: int = 42,
) -> np.ndarray:
    """Project ``(n, d)`` vectors to an ``(n, 2)`` float32 array.

    ``n_neighbors`` is capped at ``n - 1`` so small inputs still work; with fewer than
    ``MIN_UMAP_ROWS`` rows the first two principal components are returned instead.
    """
    n = vectors.shape[0]
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    if n < MIN_UMAP_ROWS:
        return _pca_2d(vectors)
    configure_numba_cache()
    import umap  # imported here: numba's cache dir must be set first

    start = time.perf_counter()
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, n - 1),
        min_dist=min_dist,
        metric=metric,
        random_state=random_state,
        n_jobs=1,  # a fixed random_state makes umap-learn single-threaded anyway
    )
    points = reducer.fit_transform(vectors).astype(np.float32)
    print(
        f"text_clustering: projected {n}/{n} texts with UMAP in "
        f"{time.perf_counter() - start:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    return points


def _pca_2d(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    if not np.any(centred):
        return np.zeros((vectors.shape[0], 2), dtype=np.float32)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return points.astype(np.float32)


def project_table(embedded: pa.Table, **params: object) -> pa.Table:
    """``(text_id, embedding)`` -> ``(text_id, projection FLOAT[2])``, in ``text_id`` order."""
    embedded = embedded.sort_by("text_id")
    points = project(to_numpy(embedded, "embedding"), **params)  # type: ignore[arg-type]
    return pa.table({"text_id": embedded["text_id"], "projection": to_arrow(points)})
