"""Exact k-nearest-neighbour search by blocked matrix products.

Cosine and Euclidean neighbours reduce to float32 matrix products plus a top-k: with torch
(installed with sentence-transformers) both run multi-threaded, ~5x faster than
scikit-learn's brute force, whose ``argpartition`` dominates at 50k x 50k. Memory is bounded
by ``block x len(reference)`` floats, in one buffer reused by every block (a fresh 400 MB
result per block costs a third more time in page faults). The neighbours of a set among
itself (:func:`exact_knn`, the UMAP graph) use the symmetry of the distances: each pair of
blocks is multiplied once and serves both blocks' rows, half the products of a plain search.
Other metrics use scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .vectors import unit_rows

FAST_METRICS = ("cosine", "euclidean")


class ExactKNN:
    """Exact nearest neighbours among the rows of ``reference`` (an ``(n, d)`` array)."""

    def __init__(self, reference: np.ndarray, *, metric: str = "cosine", block: int = 1024):
        self.metric = metric
        self.block = block
        self.size = reference.shape[0]
        self._sklearn: Any = None
        if metric not in FAST_METRICS:
            from sklearn.neighbors import NearestNeighbors

            self._sklearn = NearestNeighbors(metric=metric, algorithm="brute").fit(reference)
            return
        from .runtime import import_torch

        torch = self._torch = import_torch()
        self._reference = torch.from_numpy(_prepare(reference, metric))
        self._squared = (self._reference * self._reference).sum(dim=1)

    def query(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, indices)`` of the ``k`` nearest reference rows, nearest first."""
        k = min(k, self.size)
        if self._sklearn is not None:
            distances, indices = self._sklearn.kneighbors(queries, n_neighbors=k)
            return distances.astype(np.float32), indices.astype(np.int64)
        torch = self._torch
        prepared = torch.from_numpy(_prepare(queries, self.metric))
        n = prepared.shape[0]
        out_d = np.empty((n, k), dtype=np.float32)
        out_i = np.empty((n, k), dtype=np.int64)
        buffer = torch.empty((min(self.block, n), self.size), dtype=torch.float32)
        with torch.inference_mode():
            for start in range(0, n, self.block):
                chunk = prepared[start : start + self.block]
                scores = buffer[: chunk.shape[0]]
                torch.matmul(chunk, self._reference.T, out=scores)  # higher = nearer
                if self.metric == "euclidean":  # -|q - r|^2 = 2 q.r - |r|^2 - |q|^2
                    scores.mul_(2).sub_(self._squared[None, :])
                    scores.sub_((chunk * chunk).sum(dim=1, keepdim=True))
                values, indices = torch.topk(scores, k, dim=1, sorted=True)
                out_d[start : start + chunk.shape[0]] = _distances(values, self.metric)
                out_i[start : start + chunk.shape[0]] = indices.numpy()
        return out_d, out_i


def exact_knn(
    vectors: np.ndarray, k: int, *, metric: str = "cosine", block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of every row among the rows, itself first (even among
    exact duplicates, as UMAP expects): ``(distances, indices)``, nearest first.

    Each pair of row blocks ``(I, J)``, ``J >= I``, is multiplied once: its row-wise top-k
    updates the neighbours of block ``I``, its column-wise top-k those of block ``J``.
    """
    n = vectors.shape[0]
    k = min(k, n)
    if metric not in FAST_METRICS:
        return ExactKNN(vectors, metric=metric).query(vectors, k)
    from .runtime import import_torch

    torch = import_torch()
    x = torch.from_numpy(_prepare(vectors, metric))
    squared = (x * x).sum(dim=1)
    best_v = torch.full((n, k), -float("inf"))
    best_i = torch.zeros((n, k), dtype=torch.int64)
    starts = range(0, n, block)
    buffer = torch.empty((min(block, n), min(block, n)), dtype=torch.float32)

    def merge(rows: slice, values: Any, indices: Any) -> None:
        all_v = torch.cat([best_v[rows], values], dim=1)
        all_i = torch.cat([best_i[rows], indices], dim=1)
        top_v, top = torch.topk(all_v, k, dim=1, sorted=True)
        best_v[rows] = top_v
        best_i[rows] = torch.gather(all_i, 1, top)

    with torch.inference_mode():
        for a in starts:
            rows_a = slice(a, min(a + block, n))
            xa = x[rows_a]
            for b in starts[a // block :]:
                rows_b = slice(b, min(b + block, n))
                scores = buffer[: xa.shape[0], : rows_b.stop - b]
                torch.matmul(xa, x[rows_b].T, out=scores)
                if metric == "euclidean":  # -|a - b|^2: symmetric, like the cosine product
                    scores.mul_(2).sub_(squared[rows_a, None]).sub_(squared[None, rows_b])
                if a == b:  # a row is its own nearest neighbour
                    scores.fill_diagonal_(float("inf"))
                kk = min(k, scores.shape[1])
                values, indices = torch.topk(scores, kk, dim=1, sorted=False)
                merge(rows_a, values, indices + b)
                if a != b:
                    kk = min(k, scores.shape[0])
                    values, indices = torch.topk(scores, kk, dim=0, sorted=False)
                    merge(rows_b, values.T, indices.T + a)
    distances = _distances(best_v, metric)
    distances[:, 0] = 0.0
    return distances, best_i.numpy()


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """float32, C order, a writable copy for torch; unit rows for cosine."""
    if metric == "cosine":
        return np.ascontiguousarray(unit_rows(vectors))  # unit_rows returns a new array
    return np.array(vectors, dtype=np.float32, order="C")


def _distances(values: Any, metric: str) -> np.ndarray:
    """Top-k scores (cosine similarity, or minus the squared distance) -> distances >= 0."""
    scores = values.numpy().astype(np.float64)
    distances = 1.0 - scores if metric == "cosine" else np.sqrt(np.maximum(-scores, 0.0))
    return np.maximum(distances, 0.0).astype(np.float32)
