"""Density clustering of the 2-D map: :class:`DensityClusterer`, a scikit-learn-style estimator.

``fit`` clusters points with DBSCAN (``eps`` as given, or from the data: :func:`auto_eps`) or
HDBSCAN (the ``hdbscan`` package: Boruvka on a KD-tree, seconds in 2-D at 100k points), then
applies the noise policy: ``centroid`` (default) moves a noise point to the cluster whose
centroid *in the embedding space* is most similar, when it is at least as similar as that
cluster's least similar member; ``nearest`` to the nearest clustered point in the map within
``noise_max_distance`` x eps; ``keep`` leaves it. ``predict`` assigns other points: the
cluster of their nearest fitted point within eps, else noise, then the same noise policy.
Arrays only: what a rebuild reuses is the step layer's business
(:mod:`text_clustering.steps.clustering`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, InputError
from .vectors import unit_rows

NOISE = -1
ALGORITHMS = ("dbscan", "hdbscan")
NOISE_POLICIES = ("keep", "nearest", "centroid")
# eps = this quantile of the distance of every point to its (min_samples-1)-th neighbour:
# 75 % of the fitted texts are then DBSCAN core points (so at most 25 % noise before the noise
# policy). Chosen with the ``centroid`` noise policy on Debian 1k/5k/20k, fortunes and WordNet
# 20k, several layouts each (docs/defaults.md): higher quantiles chain the dense middle of a
# weakly structured layout into one cluster (half of fortunes at 0.85).
AUTO_EPS_QUANTILE = 0.75
# Texts embedded per block when their similarity to every centroid is computed.
CENTROID_BLOCK = 8192
# The embeddings of some rows: an array (row for row), or a function of the row positions.
Vectors = np.ndarray | Callable[[np.ndarray], np.ndarray]


def _kd_tree(points: np.ndarray) -> Any:
    from scipy.spatial import cKDTree  # imported on use: a rebuild that reuses labels skips it

    return cKDTree(points)


def k_distances(points: np.ndarray, k: int) -> np.ndarray:
    """Distance of every point to its ``k``-th nearest other point (float64)."""
    n = points.shape[0]
    if n < 2:
        return np.zeros(n)
    k = min(k, n - 1)
    distances, _ = _kd_tree(points).query(points, k=k + 1)
    return np.asarray(distances)[:, k]


def auto_eps(points: np.ndarray, min_samples: int, *, quantile: float = AUTO_EPS_QUANTILE) -> float:
    """DBSCAN's ``eps`` from the data: the ``quantile`` of the k-distance distribution.

    With ``k = min_samples - 1`` other points (DBSCAN counts the point itself), a share
    ``quantile`` of the points are core points. The layout's scale and density are read
    from the data, so no corpus needs a hand-tuned ``eps``. Never returns 0 (all points
    identical -> a tiny positive radius, one cluster).
    """
    if points.shape[0] < 2:
        return 1e-6
    eps = float(np.quantile(k_distances(points, max(min_samples - 1, 1)), quantile))
    return max(eps, 1e-6)


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber non-noise labels 0..k-1 by descending size, ties by first occurrence."""
    out = np.full(labels.shape, NOISE, dtype=np.int32)
    ids, first, counts = np.unique(labels[labels != NOISE], return_index=True, return_counts=True)
    order = sorted(range(len(ids)), key=lambda i: (-counts[i], first[i]))
    for new, i in enumerate(order):
        out[labels == ids[i]] = new
    return out


def density_labels(
    points: np.ndarray,
    *,
    algorithm: str = "dbscan",
    eps: float | None = None,
    min_samples: int = 5,
) -> tuple[np.ndarray, float]:
    """Cluster ``(n, 2)`` points; returns ``(int32 labels with -1 = noise, eps)``.

    ``eps`` is the radius used (given, or :func:`auto_eps`); for HDBSCAN, which needs none,
    it is still returned as the assignment radius of texts projected later.
    Cluster ids are renumbered by size, largest first (ties by first member).
    """
    if points.shape[0] == 0:
        return np.zeros(0, dtype=np.int32), eps or 1e-6
    radius = eps if eps is not None else auto_eps(points, min_samples)
    if algorithm == "hdbscan":
        import hdbscan  # Boruvka KD-tree: fast in 2-D (scikit-learn's HDBSCAN is O(n^2))

        size = max(2, min(min_samples, points.shape[0]))
        raw = hdbscan.HDBSCAN(min_cluster_size=size, core_dist_n_jobs=1).fit_predict(
            points.astype(np.float64)
        )
    else:
        from sklearn.cluster import DBSCAN

        raw = DBSCAN(eps=radius, min_samples=min_samples).fit_predict(points)
    return relabel_by_size(np.asarray(raw)), radius


def assign_nearest(
    reference: np.ndarray, reference_labels: np.ndarray, points: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each point takes the label of its nearest reference point if within ``radius``,
    else noise. Returns ``(labels, distance to that nearest reference point)``."""
    if points.shape[0] == 0 or reference.shape[0] == 0:
        return np.full(points.shape[0], NOISE, dtype=np.int32), np.full(points.shape[0], np.inf)
    distances, index = _kd_tree(reference).query(points, k=1)
    labels = reference_labels[index].astype(np.int32)
    labels[distances > radius] = NOISE
    return labels, distances


def reassign_noise(
    points: np.ndarray,
    labels: np.ndarray,
    anchors: np.ndarray,
    anchor_labels: np.ndarray,
    *,
    max_distance: float,
    target_share: float = 0.0,
    total: int | None = None,
) -> np.ndarray:
    """Move noise points to the cluster of their nearest clustered anchor, closest first,
    while that anchor lies within ``max_distance`` and the noise share of ``total`` texts
    (default: ``len(points)``) is above ``target_share``. Returns a boolean "moved" mask."""
    noise = np.flatnonzero(labels == NOISE)
    clustered = anchor_labels != NOISE
    if noise.size == 0 or not clustered.any():
        return np.zeros(labels.shape[0], dtype=bool)
    distances, index = _kd_tree(anchors[clustered]).query(points[noise], k=1)
    targets = anchor_labels[clustered][index]
    return _move_noise(
        labels,
        noise,
        targets,
        distances,
        distances <= max_distance,
        target_share=target_share,
        total=total,
    )


def _move_noise(
    labels: np.ndarray,
    noise: np.ndarray,
    targets: np.ndarray,
    rank: np.ndarray,
    allowed: np.ndarray,
    *,
    target_share: float,
    total: int | None,
) -> np.ndarray:
    """Give ``labels[noise[i]]`` the label ``targets[i]`` for the ``allowed`` rows, lowest
    ``rank`` first (ties by position: deterministic), while the noise share of ``total``
    texts (default ``len(labels)``) is above ``target_share``. Returns the "moved" mask."""
    total = labels.shape[0] if total is None else total
    budget = max(0, noise.size - int(np.floor(target_share * total)))
    order = np.lexsort((noise, rank))
    chosen = order[allowed[order]][:budget]
    labels[noise[chosen]] = targets[chosen]
    moved = np.zeros(labels.shape[0], dtype=bool)
    moved[noise[chosen]] = True
    return moved


@dataclass(frozen=True)
class Centroids:
    """The clusters in the embedding space: per cluster ``label``, its unit-length mean
    direction ``vector`` and its ``reach``, the cosine similarity of its least similar member
    to that direction."""

    labels: np.ndarray  # (k,) int32
    vectors: np.ndarray  # (k, d) float32, unit length
    reach: np.ndarray  # (k,) float32


def cluster_centroids(vectors: np.ndarray, labels: np.ndarray) -> Centroids:
    """:class:`Centroids` of the clustered rows of ``vectors`` (noise rows are ignored)."""
    kept = labels != NOISE
    members, unit = labels[kept], unit_rows(vectors[kept])
    order = np.argsort(members, kind="stable")
    members, unit = members[order], unit[order]
    ids, starts = np.unique(members, return_index=True)
    if ids.size == 0:
        empty = np.zeros(0, dtype=np.float32)
        return Centroids(ids.astype(np.int32), np.zeros((0, vectors.shape[1]), np.float32), empty)
    centres = unit_rows(np.add.reduceat(unit.astype(np.float64), starts, axis=0))
    owner = np.repeat(np.arange(ids.size), np.diff(np.append(starts, members.size)))
    own = np.einsum("ij,ij->i", unit, centres[owner])
    return Centroids(ids.astype(np.int32), centres, np.minimum.reduceat(own, starts))


def reassign_to_centroids(
    vectors: np.ndarray,
    labels: np.ndarray,
    centroids: Centroids,
    *,
    target_share: float = 0.0,
    total: int | None = None,
) -> np.ndarray:
    """Move noise rows (``labels == -1``; ``vectors`` are their embeddings, row for row) to
    the cluster whose centroid is most similar (cosine), if they are within its reach (at
    least as similar as its least similar member); most similar first, while the noise share
    of ``total`` texts (default ``len(labels)``) is above ``target_share``. Texts outside
    every cluster's reach stay noise. Returns a boolean "moved" mask."""
    noise = np.flatnonzero(labels == NOISE)
    if noise.size == 0 or centroids.labels.size == 0:
        return np.zeros(labels.shape[0], dtype=bool)
    best = np.empty(noise.size, dtype=np.int64)
    similarity = np.empty(noise.size, dtype=np.float32)
    for start in range(0, noise.size, CENTROID_BLOCK):
        rows = noise[start : start + CENTROID_BLOCK]
        scores = unit_rows(vectors[rows]) @ centroids.vectors.T
        nearest = scores.argmax(axis=1)
        best[start : start + rows.size] = nearest
        similarity[start : start + rows.size] = scores[np.arange(rows.size), nearest]
    within = similarity >= centroids.reach[best]
    return _move_noise(
        labels,
        noise,
        centroids.labels[best],
        -similarity,
        within,
        target_share=target_share,
        total=total,
    )


class DensityClusterer:
    """Cluster ``(n, 2)`` points; ``-1`` is noise, clusters numbered by size, 0 the largest.

    Learned: ``labels_`` (after the noise policy), ``density_labels_`` (before it),
    ``moved_`` (points the noise policy moved), ``eps_`` (the radius used; for HDBSCAN the
    assignment radius of points predicted later), ``anchors_`` / ``anchor_labels_`` (the
    points ``predict`` assigns to) and ``centroids_`` (:class:`Centroids` in the embedding
    space, for the ``centroid`` policy; None until needed).

    ``vectors`` (``fit`` / ``predict``) are the points' embeddings, needed by the
    ``centroid`` policy only: an array row for row, or a function of row positions that
    returns their embeddings (called only when there is noise to move).
    """

    def __init__(
        self,
        *,
        algorithm: str = "dbscan",
        eps: float | None = None,
        min_samples: int = 5,
        noise_policy: str = "centroid",
        noise_max_distance: float | None = 2.0,
        target_noise_share: float = 0.0,
    ) -> None:
        self.algorithm = algorithm
        self.eps = eps
        self.min_samples = min_samples
        self.noise_policy = noise_policy
        self.noise_max_distance = noise_max_distance
        self.target_noise_share = target_noise_share

    def _validate(self) -> None:
        def bad(var: str, expected: str, value: object) -> ConfigError:
            return ConfigError(f"dbt var `{var}` must be {expected}, got {value!r}.")

        if self.algorithm not in ALGORITHMS:
            raise bad("clustering_algorithm", f"one of {', '.join(ALGORITHMS)}", self.algorithm)
        if self.noise_policy not in NOISE_POLICIES:
            raise bad("noise_policy", f"one of {', '.join(NOISE_POLICIES)}", self.noise_policy)
        if not 0.0 <= self.target_noise_share <= 1.0:
            raise bad("target_noise_share", "between 0 and 1", self.target_noise_share)
        if self.eps is not None and not self.eps > 0:
            raise bad("eps", "a number > 0 (or null: from the data)", self.eps)
        if self.min_samples < 2:
            raise bad("min_samples", "an integer >= 2", self.min_samples)

    def fit(self, points: np.ndarray, vectors: Vectors | None = None) -> DensityClusterer:
        self._validate()
        points = np.asarray(points)
        labels, self.eps_ = density_labels(
            points, algorithm=self.algorithm, eps=self.eps, min_samples=self.min_samples
        )
        self.density_labels_ = labels.copy()
        self.centroids_: Centroids | None = None
        self._members: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
        noise = labels == NOISE
        if self.noise_policy == "nearest":
            moved = reassign_noise(
                points,
                labels,
                points,
                labels.copy(),
                max_distance=self._max_distance(),
                target_share=self.target_noise_share,
            )
        elif self.noise_policy == "centroid" and noise.any():
            every = _rows(_need(vectors), np.arange(points.shape[0]))
            self.centroids_ = cluster_centroids(every, labels)
            moved = reassign_to_centroids(
                every, labels, self.centroids_, target_share=self.target_noise_share
            )
        else:
            moved = np.zeros(points.shape[0], dtype=bool)
        self.labels_, self.moved_ = labels, moved
        self.anchors_, self.anchor_labels_ = points, labels
        if self.centroids_ is None and self.noise_policy == "centroid" and vectors is not None:
            members = np.flatnonzero(~noise)
            density = self.density_labels_
            self._members = lambda: (_rows(vectors, members), density[members])
        return self

    @classmethod
    def restore(
        cls,
        anchors: np.ndarray,
        anchor_labels: np.ndarray,
        radius: float,
        *,
        member_vectors: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
        **params: Any,
    ) -> DensityClusterer:
        """A fitted clusterer from a saved fit: the fitted points and their labels, ``eps_``,
        and (``centroid`` policy) a function returning ``(embeddings, labels)`` of the
        clusters' own members, called only when a prediction has noise to move."""
        clusterer = cls(**params)
        clusterer._validate()
        clusterer.anchors_, clusterer.anchor_labels_ = anchors, anchor_labels
        clusterer.eps_, clusterer.centroids_ = radius, None
        clusterer._members = member_vectors
        return clusterer

    def predict(self, points: np.ndarray, vectors: Vectors | None = None) -> np.ndarray:
        """The cluster of each point (``-1`` noise); see :meth:`assign`."""
        return self.assign(points, vectors)[0]

    def assign(
        self, points: np.ndarray, vectors: Vectors | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, moved)``: each point takes its nearest fitted point's cluster within
        ``eps_``, else noise; the noise policy then moves noise (``moved``)."""
        labels, _ = assign_nearest(self.anchors_, self.anchor_labels_, points, self.eps_)
        moved = np.zeros(labels.shape[0], dtype=bool)
        lost = np.flatnonzero(labels == NOISE)
        if self.noise_policy == "nearest":
            moved = reassign_noise(
                points,
                labels,
                self.anchors_,
                self.anchor_labels_,
                max_distance=self._max_distance(),
            )
        elif self.noise_policy == "centroid" and lost.size:
            centroids = self.centroids()
            lost_labels = labels[lost]
            moved_lost = reassign_to_centroids(_rows(_need(vectors), lost), lost_labels, centroids)
            labels[lost] = lost_labels
            moved[lost[moved_lost]] = True
        return labels, moved

    def centroids(self) -> Centroids:
        """The clusters' centroids in the embedding space (computed once, on first need)."""
        if self.centroids_ is None:
            if self._members is None:
                raise InputError("noise_policy 'centroid' needs the texts' embeddings")
            self.centroids_ = cluster_centroids(*self._members())
        return self.centroids_

    def _max_distance(self) -> float:
        if self.noise_max_distance is None:
            return float("inf")
        return self.noise_max_distance * self.eps_


def _need(vectors: Vectors | None) -> Vectors:
    if vectors is None:
        raise InputError("noise_policy 'centroid' needs the texts' embeddings (vectors=...)")
    return vectors


def _rows(vectors: Vectors, rows: np.ndarray) -> np.ndarray:
    """The embeddings of ``rows`` (positions) from an array or a function of positions."""
    return vectors(rows) if callable(vectors) else np.asarray(vectors)[rows]
