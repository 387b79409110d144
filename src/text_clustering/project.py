"""2-D projection of embeddings with UMAP (deterministic: fixed ``random_state``)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pyarrow as pa

from ._numba import cached_jit
from .log import log
from .vectors import to_arrow, to_numpy

# Below this many distinct vectors UMAP's layout is meaningless (it scatters identical texts
# at random); the first two principal components are used instead.
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

    The k-nearest-neighbour graph is computed exactly (brute force, scikit-learn) and handed
    to UMAP, which then skips pynndescent's approximate search: deterministic, and no JIT.
    ``n_neighbors`` is capped at ``n - 1`` so small inputs still work; with fewer than
    ``MIN_UMAP_ROWS`` distinct vectors the first two principal components are returned
    instead (all-identical vectors all land on the origin, and so form one cluster).
    """
    n = vectors.shape[0]
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    if n < MIN_UMAP_ROWS or np.unique(vectors, axis=0).shape[0] < MIN_UMAP_ROWS:
        log(f"projected {n} texts with PCA: too few distinct embeddings for UMAP")
        return _pca_2d(vectors)
    start = time.perf_counter()
    k = min(n_neighbors, n - 1)
    knn_distances, knn_indices = exact_knn(vectors, k, metric=metric)
    with cached_jit():
        import umap  # imported here: numba's cache must be set up first

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=k,
            min_dist=min_dist,
            metric=metric,
            random_state=random_state,
            n_jobs=1,  # a fixed random_state makes umap-learn single-threaded anyway
            precomputed_knn=(knn_indices, knn_distances, None),
        )
        with warnings.catch_warnings():
            # "no search index: transform() unavailable" and "n_jobs overridden": expected.
            warnings.simplefilter("ignore", UserWarning)
            points = reducer.fit_transform(vectors).astype(np.float32)
    log(f"projected {n}/{n} texts with UMAP in {time.perf_counter() - start:.1f}s")
    return points


def exact_knn(
    vectors: np.ndarray, k: int, *, metric: str = "cosine"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of every row (itself first): ``(distances, indices)``."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(vectors)
    distances, indices = index.kneighbors(vectors)
    return distances.astype(np.float32), indices.astype(np.int64)


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
