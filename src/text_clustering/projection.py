"""The 2-D map of the embeddings: :class:`UMAPProjector`, a scikit-learn-style estimator.

``fit`` lays out the fitted vectors with UMAP from their exact k-nearest-neighbour graph
(:mod:`~text_clustering.knn`, deterministic, no pynndescent); ``transform`` places other
vectors on that map: the weighted mean of the positions of their ``n_neighbors`` nearest
fitted vectors (umap-learn's own initialisation for ``transform``). With fewer than
``MIN_UMAP_ROWS`` distinct vectors the first two principal components are used instead.
Arrays only: which texts are fitted, and what a rebuild reuses, is the step layer's business
(:mod:`text_clustering.steps.projection`).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from ._numba import cached_jit
from .errors import ConfigError
from .knn import ExactKNN, exact_knn
from .log import log
from .runtime import one_blas_thread

COPY_DISTANCE = 1e-6
# Below this many distinct vectors UMAP's layout is meaningless (it scatters identical texts
# at random); the first two principal components are used instead.
MIN_UMAP_ROWS = 8
# Layout epochs when var n_epochs is null (:func:`layout_epochs`): umap-learn's 500 up to
# 10,000 fitted texts and 200 up to 20,000, then 10 fewer per 1,000 more texts down to 100
# from 30,000 (the default fit of a large table), where 100 scored the same as more
# (docs/performance.md).
SMALL_FIT_ROWS, SMALL_FIT_EPOCHS, FIT_EPOCHS, MIN_FIT_EPOCHS = 10_000, 500, 200, 100
FULL_EPOCH_ROWS, ROWS_PER_EPOCH = 20_000, 100
Graph = tuple[np.ndarray, np.ndarray]  # (distances, indices), nearest first


class UMAPProjector:
    """Project ``(n, d)`` vectors to ``(n, 2)`` float32 positions.

    Parameters are umap-learn's (``n_neighbors`` capped at ``n - 1`` for small inputs;
    ``n_epochs`` None: :func:`layout_epochs`).
    Learned: ``embedding_`` (the fitted positions), ``fit_vectors_`` (kept for transform),
    ``method_`` (``umap`` or ``pca``).
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "cosine",
        random_state: int = 42,
        n_epochs: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.random_state = random_state
        self.n_epochs = n_epochs

    def fit(self, vectors: np.ndarray, *, graph: Graph | None = None) -> UMAPProjector:
        """Lay out ``vectors``; ``graph`` is their :func:`knn_graph` when already computed
        (the step computes it first, then searches other texts while the layout runs)."""
        if self.n_neighbors < 2:
            raise ConfigError(f"dbt var `n_neighbors` must be >= 2, got {self.n_neighbors!r}.")
        if self.n_epochs is not None and self.n_epochs < 1:
            raise ConfigError(f"dbt var `n_epochs` must be >= 1 or null, got {self.n_epochs!r}.")
        vectors = np.asarray(vectors, dtype=np.float32)
        self.fit_vectors_ = vectors
        self._index: ExactKNN | None = None
        if vectors.shape[0] == 0:
            self.embedding_, self.method_ = np.zeros((0, 2), dtype=np.float32), "pca"
        elif needs_pca(vectors):
            log(f"projected {vectors.shape[0]} texts with PCA: too few distinct embeddings")
            self.embedding_, self.method_ = pca_2d(vectors), "pca"
        else:
            graph = graph or knn_graph(vectors, self.n_neighbors, metric=self.metric)
            self.embedding_, self.method_ = self._layout(vectors, graph), "umap"
        return self

    def fit_transform(self, vectors: np.ndarray, *, graph: Graph | None = None) -> np.ndarray:
        return self.fit(vectors, graph=graph).embedding_

    @classmethod
    def restore(
        cls, fit_vectors: np.ndarray, embedding: np.ndarray, **params: Any
    ) -> UMAPProjector:
        """A fitted projector from a saved fit (its vectors and positions, row for row)."""
        projector = cls(**params)
        projector.fit_vectors_ = np.asarray(fit_vectors, dtype=np.float32)
        projector.embedding_ = np.asarray(embedding, dtype=np.float32)
        projector.method_ = "restored"
        projector._index = None
        return projector

    def kneighbors(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``n_neighbors`` nearest fitted vectors of each row: ``(distances, indices)``.
        Thread-safe once the index exists (:meth:`index`)."""
        k = min(self.n_neighbors, self.fit_vectors_.shape[0])
        return self.index().query(vectors, k)

    def index(self) -> ExactKNN:
        """The search index over the fitted vectors, built on first use."""
        if self._index is None:
            self._index = ExactKNN(self.fit_vectors_, metric=self.metric)
        return self._index

    def place(self, distances: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """Positions from :meth:`kneighbors`' result (see :func:`place`)."""
        return place(distances, indices, self.embedding_)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Place new ``(m, d)`` vectors on the fitted map: ``(m, 2)`` float32."""
        if vectors.shape[0] == 0 or self.fit_vectors_.shape[0] == 0:
            return np.zeros((vectors.shape[0], 2), dtype=np.float32)
        return self.place(*self.kneighbors(vectors))

    def _layout(self, vectors: np.ndarray, graph: Graph) -> np.ndarray:
        """UMAP's layout from the graph (one thread: a fixed ``random_state`` makes
        umap-learn's optimisation single-threaded; its BLAS calls, the spectral start's,
        on one thread too (:func:`~text_clustering.runtime.one_blas_thread`), so the layout is
        the same whatever var n_threads, in a dbt model's thread or Spark's driver, and
        whether a search runs beside it)."""
        start = time.perf_counter()
        distances, indices = graph
        n = vectors.shape[0]
        epochs = self.n_epochs or layout_epochs(n)
        umap = import_umap()
        with cached_jit():  # umap-learn also compiles code when called
            reducer = umap.UMAP(
                n_components=2,
                n_neighbors=indices.shape[1],
                min_dist=self.min_dist,
                metric=self.metric,
                random_state=self.random_state,
                n_jobs=1,
                n_epochs=epochs,
                precomputed_knn=(indices, distances, None),
            )
            with warnings.catch_warnings(), one_blas_thread():
                # "no search index: transform() unavailable" and "n_jobs overridden": expected.
                warnings.simplefilter("ignore", UserWarning)
                points = reducer.fit_transform(vectors).astype(np.float32)
        elapsed = time.perf_counter() - start
        log(f"projected {n}/{n} texts with UMAP; layout ({epochs} epochs) in {elapsed:.1f}s")
        return points


def import_umap() -> Any:
    """``umap`` (umap-learn), imported with numba's cache set up (:func:`cached_jit`); with it
    scikit-learn, SciPy and numba (~3.5 s on one core of this project's hosts)."""
    with cached_jit():
        import umap

    return umap


def layout_epochs(n_fit: int) -> int:
    """UMAP layout epochs for ``n_fit`` fitted texts when var n_epochs is null: 500 up to
    10,000, 200 up to 20,000, then one fewer per 100 more texts, 100 from 30,000."""
    if n_fit <= SMALL_FIT_ROWS:
        return SMALL_FIT_EPOCHS
    fewer = max(0, n_fit - FULL_EPOCH_ROWS) // ROWS_PER_EPOCH
    return max(MIN_FIT_EPOCHS, FIT_EPOCHS - fewer)


def knn_graph(vectors: np.ndarray, n_neighbors: int, *, metric: str = "cosine") -> Graph:
    """The exact ``min(n_neighbors, n - 1)``-NN graph of the rows: ``(distances, indices)``."""
    from .runtime import threads_in_use

    start = time.perf_counter()
    k = min(n_neighbors, vectors.shape[0] - 1)
    threads = threads_in_use()
    graph = exact_knn(vectors, k, metric=metric, threads=threads)
    log(
        f"projection: exact {k}-NN graph of {vectors.shape[0]} texts in "
        f"{time.perf_counter() - start:.1f}s ({threads} threads)"
    )
    return graph


def needs_pca(vectors: np.ndarray) -> bool:
    """Too few distinct vectors for a UMAP layout (see ``MIN_UMAP_ROWS``)."""
    n = vectors.shape[0]
    return n < MIN_UMAP_ROWS or n_distinct(vectors) < MIN_UMAP_ROWS


def n_distinct(vectors: np.ndarray) -> int:
    """Number of distinct rows, from a random projection of each row (O(n d), no sort of
    the whole matrix): rows that differ map to different values with probability 1."""
    if vectors.shape[0] == 0:
        return 0
    direction = np.random.default_rng(0).normal(size=vectors.shape[1])
    return int(np.unique(vectors.astype(np.float64) @ direction).shape[0])


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components, ``(n, 2)`` float32 (zeros when all rows agree)."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    if not np.any(centred):
        return np.zeros((vectors.shape[0], 2), dtype=np.float32)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return points.astype(np.float32)


def place(distances: np.ndarray, neighbours: np.ndarray, fit_points: np.ndarray) -> np.ndarray:
    """Positions from the nearest fitted texts (``(n, k)`` distances and indices, nearest
    first): the weighted mean of their positions, weights ``exp(-(d - d_min) / mean(d -
    d_min))`` (the nearest counts most); a copy of a fitted text (distance <= 1e-6) lands
    on it."""
    if distances.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.float32)
    gaps = np.maximum(distances - distances[:, :1], 0.0)
    scale = gaps.mean(axis=1, keepdims=True)
    weights = np.exp(-gaps / np.where(scale > 0, scale, 1.0))
    points = (weights[:, :, None] * fit_points[neighbours]).sum(axis=1)
    points /= weights.sum(axis=1, keepdims=True)
    copies = distances[:, 0] <= COPY_DISTANCE  # a copy of a fitted text lands on it
    points[copies] = fit_points[neighbours[copies, 0]]
    return points.astype(np.float32)
