"""Facets: each cluster split into up to ``k`` parts of the 2-D map, so that its
representatives can be central AND diverse (one per facet, the text nearest the facet's
centre; chosen in SQL by int_cluster_representatives). Arrays only.
"""

from __future__ import annotations

import numpy as np

from .clustering import NOISE


def facets(
    points: np.ndarray, labels: np.ndarray, k: int, *, iterations: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Split every cluster into up to ``k`` facets (k-means in the projection) so that its
    representatives can be central AND diverse: one per facet, the text nearest the facet's
    centre. Facet 0 is the one whose centre is nearest the cluster's centre, then by that
    distance. Returns ``(facet, distance to the facet centre)``; -1 / NaN for noise.

    Deterministic without a seed: k-means starts from a farthest-point traversal that
    begins at the text nearest the cluster's centre.
    """
    facet = np.full(points.shape[0], -1, dtype=np.int32)
    distance = np.full(points.shape[0], np.nan, dtype=np.float32)
    for label in np.unique(labels[labels != NOISE]):
        members = np.flatnonzero(labels == label)
        group = points[members].astype(np.float64)
        n_facets = min(k, np.unique(group, axis=0).shape[0])
        assignment, centres = _kmeans(group, n_facets, iterations)
        rank = np.argsort(
            np.linalg.norm(centres - group.mean(axis=0), axis=1), kind="stable"
        ).argsort()
        facet[members] = rank[assignment]
        distance[members] = np.linalg.norm(group - centres[assignment], axis=1)
    return facet, distance


def _kmeans(points: np.ndarray, k: int, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from a farthest-point start (``k`` <= distinct points)."""
    centre = points.mean(axis=0)
    chosen = [int(np.argmin(np.linalg.norm(points - centre, axis=1)))]
    nearest = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(k - 1):
        chosen.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(points - points[chosen[-1]], axis=1))
    centres = points[chosen].copy()
    assignment = np.zeros(points.shape[0], dtype=np.int64)
    for _ in range(iterations):
        gaps = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        assignment = np.argmin(gaps, axis=1)
        for j in range(k):
            mine = assignment == j
            if mine.any():
                centres[j] = points[mine].mean(axis=0)
    gaps = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(gaps, axis=1), centres
