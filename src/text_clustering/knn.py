"""Exact k-nearest-neighbour search by blocked matrix products.

Cosine and Euclidean neighbours reduce to float32 matrix products plus a top-k, in NumPy:
its OpenBLAS ``sgemm`` ran these products faster than torch on this project's 2-core AMD
hosts (docs/performance.md), and the projection then needs no torch (whose import cost
~1.5-2.4 s on one core). Every block's product runs on one BLAS thread, and blocks are
shared among ``threads`` workers (:func:`exact_knn`, the projection's search), so a block's
result does not depend on which worker took it or how many there were (deterministic; a
block's rows, though, come out differently in the last bits in a block of another size).
BLAS is held to one thread by :func:`~text_clustering.runtime.one_blas_thread`, not
threadpoolctl's limits: those
are a no-op for OpenBLAS in any thread but the first that set one (threadpoolctl >= 3.6),
and dbt runs each model on a thread of its own.
Memory is bounded by ``block x len(reference)`` floats per worker, in one buffer reused by
every block that worker takes (a fresh 120 MB result per block costs a third more time in
page faults). The top-k of a block's scores is found group by group (:func:`_top_k`).
Other metrics use scikit-learn.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .runtime import one_blas_thread, threads_in_use
from .vectors import unit_rows

FAST_METRICS = ("cosine", "euclidean")
GROUP = 64  # columns per group of :func:`_top_k`


class ExactKNN:
    """Exact nearest neighbours among the rows of ``reference`` (an ``(n, d)`` array).

    ``block`` query rows are scored against every reference row at once, into a buffer
    each thread reuses for every block; their top-k is found by :func:`_top_k` (``group``).
    """

    def __init__(
        self,
        reference: np.ndarray,
        *,
        metric: str = "cosine",
        block: int = 1024,
        group: int = GROUP,
    ):
        self.metric = metric
        self.block = block
        self.group = group
        self.size = reference.shape[0]
        self._sklearn: Any = None
        self._buffers = threading.local()
        if metric not in FAST_METRICS:
            from sklearn.neighbors import NearestNeighbors

            self._sklearn = NearestNeighbors(metric=metric, algorithm="brute").fit(reference)
            return
        # padded to whole groups with zero rows, whose scores are set to -inf
        padded = -(-self.size // group) * group
        prepared = _prepare(reference, self.metric)
        self._reference = np.zeros((padded, prepared.shape[1]), dtype=np.float32)
        self._reference[: self.size] = prepared
        self._squared = np.einsum("ij,ij->i", self._reference, self._reference)

    def query(
        self, queries: np.ndarray, k: int, *, offset: int | None = None, threads: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, indices)`` of the ``k`` nearest reference rows, nearest first (equal
        scores in column order; which of several equal scores make the cut at the ``k``-th
        place is NumPy's partition's choice, the same every time). ``offset``: query row
        ``i`` is reference row ``offset + i``, listed first (itself, even among exact
        duplicates, as UMAP's graph expects). ``threads`` > 1 shares the blocks among that
        many workers; every product runs on one BLAS thread (the same result as one
        worker, in any thread: :func:`~text_clustering.runtime.one_blas_thread`)."""
        k = min(k, self.size)
        if self._sklearn is not None:
            distances, indices = self._sklearn.kneighbors(queries, n_neighbors=k)
            return distances.astype(np.float32), indices.astype(np.int64)
        prepared = _prepare(queries, self.metric)
        n = prepared.shape[0]
        out_d = np.empty((n, k), dtype=np.float32)
        out_i = np.empty((n, k), dtype=np.int64)

        def search(start: int) -> None:
            chunk = prepared[start : start + self.block]
            scores = self._buffer(chunk.shape[0])
            np.matmul(chunk, self._reference.T, out=scores)  # higher = nearer
            if self.metric == "euclidean":  # -|q - r|^2 = 2 q.r - |r|^2 - |q|^2
                scores *= 2
                scores -= self._squared[None, :]
                scores -= np.einsum("ij,ij->i", chunk, chunk)[:, None]
            scores[:, self.size :] = -np.inf  # the padding rows
            if offset is not None:  # a row is its own nearest neighbour
                rows = np.arange(chunk.shape[0])
                scores[rows, offset + start + rows] = np.inf
            values, columns = _top_k(scores, k, self.group)
            out_d[start : start + chunk.shape[0]] = _distances(values, self.metric)
            out_i[start : start + chunk.shape[0]] = columns

        starts = range(0, n, self.block)
        with one_blas_thread():
            if threads > 1 and len(starts) > 1:
                with ThreadPoolExecutor(threads, "knn") as pool:
                    list(pool.map(search, starts))
            else:
                for start in starts:
                    search(start)
        if offset is not None:
            out_d[:, 0] = 0.0
        return out_d, out_i

    def _buffer(self, rows: int) -> np.ndarray:
        """This thread's scores buffer (``rows x`` the padded reference), reused."""
        buffer = getattr(self._buffers, "scores", None)
        if buffer is None or buffer.shape[0] < rows:
            buffer = np.empty((rows, self._reference.shape[0]), dtype=np.float32)
            self._buffers.scores = buffer
        return buffer[:rows]


def exact_knn(
    vectors: np.ndarray,
    k: int,
    *,
    metric: str = "cosine",
    block: int = 1024,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of every row among the rows, itself first (even among
    exact duplicates, as UMAP expects): ``(distances, indices)``, nearest first. ``threads``
    (None: :func:`~text_clustering.runtime.threads_in_use`) share the blocks."""
    k = min(k, vectors.shape[0])
    index = ExactKNN(vectors, metric=metric, block=block)
    offset = 0 if metric in FAST_METRICS else None
    return index.query(vectors, k, offset=offset, threads=threads or threads_in_use())


def _top_k(scores: np.ndarray, k: int, group: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest scores of each row and their columns, highest first (equal scores
    in column order).

    Exact: the columns are taken in groups of ``group`` (the row's width is a multiple of
    it); the ``k`` groups with the highest maxima hold the row's ``k`` highest scores (each
    of those is at least the ``k``-th highest group maximum, so its group is among those
    ``k``); the top-k is then found among their ``k * group`` scores. A partial sort over
    the whole row (``argpartition``) took ~5x as long as the matrix product.
    """
    rows, width = scores.shape
    if width // group <= k:
        candidates = scores
        columns = np.broadcast_to(np.arange(width), scores.shape)
    else:
        grouped = scores.reshape(rows, width // group, group)
        maxima = grouped.max(axis=2)
        best = np.argpartition(maxima, -k, axis=1)[:, -k:]
        candidates = np.take_along_axis(grouped, best[:, :, None], axis=1).reshape(rows, -1)
        columns = (best[:, :, None] * group + np.arange(group)).reshape(rows, -1)
    if candidates.shape[1] > k:
        top = np.argpartition(candidates, -k, axis=1)[:, -k:]
        candidates = np.take_along_axis(candidates, top, axis=1)
        columns = np.take_along_axis(columns, top, axis=1)
    order = np.lexsort((columns, -candidates), axis=1)
    return np.take_along_axis(candidates, order, 1), np.take_along_axis(columns, order, 1)


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """float32, C order; unit rows for cosine."""
    if metric == "cosine":
        return np.ascontiguousarray(unit_rows(vectors), dtype=np.float32)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _distances(values: np.ndarray, metric: str) -> np.ndarray:
    """Top-k scores (cosine similarity, or minus the squared distance) -> distances >= 0."""
    scores = values.astype(np.float64)
    distances = 1.0 - scores if metric == "cosine" else np.sqrt(np.maximum(-scores, 0.0))
    return np.maximum(distances, 0.0).astype(np.float32)
