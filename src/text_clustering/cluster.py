"""Density clustering of the 2-D projection, and the assignment of texts to fitted clusters.

Clusters are *fitted* on the texts UMAP was fitted on (all texts, up to var ``max_fit_rows``):

- ``dbscan`` (scikit-learn): ``eps`` as given, or chosen from the data (:func:`auto_eps`);
- ``hdbscan`` (the ``hdbscan`` package: Boruvka on a KD-tree, seconds on 2-D at 100k points).

Every other text (projected by ``transform`` or added since the fit) is *assigned*: it takes
the cluster of its nearest fitted neighbour in the projection when that neighbour lies within
the assignment radius (``eps``), else it is noise. A noise policy then moves noise to a
cluster: by default (``centroid``) to the cluster whose centroid *in the embedding space* is
most similar, when the text is at least as similar to it as that cluster's least similar
member. :func:`cluster_incremental` does all of it, and reuses the previous build's
labels when neither the projection fit nor the settings changed, so adding texts never
renumbers clusters (and never re-asks the LLM about unchanged clusters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import ConfigError
from .log import log
from .vectors import to_numpy, unit_rows

NOISE = -1
ALGORITHMS = ("dbscan", "hdbscan")
NOISE_POLICIES = ("keep", "nearest", "centroid")
# eps = this quantile of the distance of every point to its (min_samples-1)-th neighbour:
# 75 % of the fitted texts are then DBSCAN core points (so at most 25 % noise before the noise
# policy). Chosen with the ``centroid`` noise policy on Debian 1k/5k/20k, fortunes and WordNet
# 20k, several layouts each (README "How the defaults were chosen"): higher quantiles chain
# the dense middle of a weakly structured layout into one cluster (half of fortunes at 0.85).
AUTO_EPS_QUANTILE = 0.75
# Texts embedded per block when their similarity to every centroid is computed.
CENTROID_BLOCK = 8192


def _kd_tree(points: np.ndarray) -> Any:
    from scipy.spatial import cKDTree  # imported on use: a rebuild that reuses labels skips it

    return cKDTree(points)


CLUSTERED_SCHEMA = pa.schema(
    [
        ("text_id", pa.string()),
        ("embedding_hash", pa.uint64()),
        ("cluster_label", pa.int32()),
        ("assigned_by", pa.string()),
        ("facet", pa.int32()),
        ("facet_distance", pa.float32()),
        ("fit_id", pa.string()),
        ("cluster_fit", pa.string()),
    ]
)


@dataclass(frozen=True)
class ClusterSettings:
    """What the clustering of one build depends on (dbt vars, validated)."""

    algorithm: str = "dbscan"
    eps: float | None = None  # None: chosen from the data (auto_eps)
    min_samples: int = 5
    noise_policy: str = "centroid"
    noise_max_distance: float | None = 2.0  # in units of eps; None: no limit
    target_noise_share: float = 0.0
    samples_per_cluster: int = 10
    random_state: int = 42

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"dbt var `clustering_algorithm` must be one of {', '.join(ALGORITHMS)}, "
                f"got {self.algorithm!r}."
            )
        if self.noise_policy not in NOISE_POLICIES:
            raise ConfigError(
                f"dbt var `noise_policy` must be one of {', '.join(NOISE_POLICIES)}, "
                f"got {self.noise_policy!r}."
            )
        if not 0.0 <= self.target_noise_share <= 1.0:
            raise ConfigError(
                f"dbt var `target_noise_share` must be between 0 and 1, "
                f"got {self.target_noise_share!r}."
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


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


def fit_clusters(
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


def cluster(
    points: np.ndarray,
    *,
    eps: float | None = None,
    min_samples: int = 5,
    algorithm: str = "dbscan",
) -> np.ndarray:
    """Return an int32 cluster label per point, ``-1`` for noise (see :func:`fit_clusters`)."""
    return fit_clusters(points, algorithm=algorithm, eps=eps, min_samples=min_samples)[0]


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


def _fit_id_column(projected: pa.Table) -> str:
    ids = projected["fit_id"].unique().to_pylist() if projected.num_rows else [""]
    return str(ids[0] or "")


def cluster_incremental(
    projected: pa.Table,
    previous: pa.Table | None,
    settings: ClusterSettings,
    embeddings: Callable[[pa.Array], np.ndarray] | None = None,
) -> pa.Table:
    """``(text_id, embedding_hash, projection, projection_source, fit_id)`` of every text ->
    its cluster.

    Reuses ``previous`` (this model's last output) when it was made from the same projection
    fit and settings: known texts (same ``text_id`` and ``embedding_hash``, hence the same
    projection) keep their labels, new or changed texts are assigned. Otherwise the
    clusters are fitted again on the texts whose ``projection_source`` is ``fit``.
    ``embeddings(text_ids)`` returns the embeddings of those texts, row for row; the
    ``centroid`` noise policy needs it (and calls it only when there is noise to move).
    """
    if settings.noise_policy == "centroid" and embeddings is None:
        raise ValueError("noise_policy 'centroid' needs the texts' embeddings (embeddings=...)")
    projected = projected.sort_by("text_id")
    points = to_numpy(projected, "projection")
    fit_id = _fit_id_column(projected)
    n = projected.num_rows
    is_fit = pc.equal(projected["projection_source"], "fit").to_numpy(zero_copy_only=False)

    reuse = (
        previous is not None
        and previous.num_rows > 0
        and _fit_id_column(previous) == fit_id
        and _same_settings(previous, settings)
    )
    labels = np.full(n, NOISE, dtype=np.int32)
    assigned_by = np.full(n, "nearest_fit", dtype=object)
    centroids: Centroids | None = None
    facet = np.full(n, -1, dtype=np.int32)
    facet_distance = np.full(n, np.nan, dtype=np.float32)
    if reuse:
        assert previous is not None
        fit_info = json.loads(previous["cluster_fit"][0].as_py())
        radius = float(fit_info["eps_used"])
        known = _align(previous, projected)
        todo = ~known["found"]
        labels[~todo] = known["cluster_label"][~todo]
        assigned_by[~todo] = known["assigned_by"][~todo]
        facet[~todo] = known["facet"][~todo]
        facet_distance[~todo] = known["facet_distance"][~todo]
        anchor = ~todo & is_fit
        log(f"clusters: reusing the fit of the previous build; {int(todo.sum())} new text(s)")
    else:
        fit_labels, radius = fit_clusters(
            points[is_fit],
            algorithm=settings.algorithm,
            eps=settings.eps,
            min_samples=settings.min_samples,
        )
        labels[is_fit] = fit_labels
        assigned_by[is_fit] = settings.algorithm
        anchor = is_fit
        todo = ~is_fit
        fit_info = {
            **json.loads(settings.to_json()),
            "eps_used": radius,
            "n_fit": int(is_fit.sum()),
        }
        how = "given" if settings.eps is not None else f"auto, q={AUTO_EPS_QUANTILE}"
        log(
            f"clusters: {settings.algorithm} on {int(is_fit.sum())} fitted texts, eps={radius:.4g}"
            f" ({how}): {len(set(fit_labels.tolist()) - {NOISE})} clusters, "
            f"{float(np.mean(fit_labels == NOISE)) if fit_labels.size else 0:.1%} noise"
        )
        if settings.noise_policy == "nearest":
            moved = reassign_noise(
                points[is_fit],
                fit_labels,
                points[is_fit],
                fit_labels.copy(),
                max_distance=_max_distance(settings, radius),
                target_share=settings.target_noise_share,
            )
        elif settings.noise_policy == "centroid" and (fit_labels == NOISE).any():
            assert embeddings is not None
            fit_vectors = embeddings(projected["text_id"].filter(pa.array(is_fit)))
            centroids = cluster_centroids(fit_vectors, fit_labels)
            moved = reassign_to_centroids(
                fit_vectors, fit_labels, centroids, target_share=settings.target_noise_share
            )
        else:
            moved = np.zeros(fit_labels.shape[0], dtype=bool)
        if moved.any():
            labels[is_fit] = fit_labels
            assigned_by[np.flatnonzero(is_fit)[moved]] = "noise_policy"
            log(f"clusters: noise policy {settings.noise_policy} moved {int(moved.sum())} text(s)")
        # Facets (hence representatives) from the clusters' own members, not from the texts
        # the noise policy moved in (those can lie anywhere in the projection).
        members = np.where(moved, NOISE, fit_labels)
        f, d = facets(points[is_fit], members, settings.samples_per_cluster)
        facet[is_fit], facet_distance[is_fit] = f, d

    if todo.any():
        new_labels, _ = assign_nearest(points[anchor], labels[anchor], points[todo], radius)
        if settings.noise_policy == "nearest":
            moved = reassign_noise(
                points[todo],
                new_labels,
                points[anchor],
                labels[anchor],
                max_distance=_max_distance(settings, radius),
            )
            assigned_by[np.flatnonzero(todo)[moved]] = "noise_policy"
        elif settings.noise_policy == "centroid" and (new_labels == NOISE).any():
            assert embeddings is not None
            if centroids is None:  # reused labels: the centroids of the fitted members
                fitted = anchor & np.isin(assigned_by, ALGORITHMS) & (labels != NOISE)
                ids = projected["text_id"].filter(pa.array(fitted))
                centroids = cluster_centroids(embeddings(ids), labels[fitted])
            lost = new_labels == NOISE
            lost_vectors = embeddings(projected["text_id"].filter(pa.array(todo)).filter(lost))
            lost_labels = new_labels[lost]
            moved = reassign_to_centroids(lost_vectors, lost_labels, centroids)
            new_labels[lost] = lost_labels
            assigned_by[np.flatnonzero(todo)[np.flatnonzero(lost)[moved]]] = "noise_policy"
        labels[todo] = new_labels
        log(f"clusters: assigned {int(todo.sum())} text(s) to the nearest fitted cluster")

    return pa.table(
        {
            "text_id": projected["text_id"],
            "embedding_hash": projected["embedding_hash"],
            "cluster_label": pa.array(labels, pa.int32()),
            "assigned_by": pa.array(assigned_by.tolist(), pa.string()),
            "facet": pa.array(np.where(facet >= 0, facet, 0), pa.int32(), mask=facet < 0),
            "facet_distance": pa.array(
                np.nan_to_num(facet_distance), pa.float32(), mask=np.isnan(facet_distance)
            ),
            "fit_id": pa.array([fit_id] * n, pa.string()),
            "cluster_fit": pa.array([json.dumps(fit_info, sort_keys=True)] * n, pa.string()),
        },
        schema=CLUSTERED_SCHEMA,
    )


def _max_distance(settings: ClusterSettings, radius: float) -> float:
    if settings.noise_max_distance is None:
        return float("inf")
    return settings.noise_max_distance * radius


def _same_settings(previous: pa.Table, settings: ClusterSettings) -> bool:
    try:
        info = json.loads(previous["cluster_fit"][0].as_py())
    except (KeyError, TypeError, ValueError):
        return False
    return all(info.get(key) == value for key, value in asdict(settings).items())


def _align(previous: pa.Table, projected: pa.Table) -> dict[str, np.ndarray]:
    """The previous row of every projected text (``found`` False where there is none)."""
    index = pc.index_in(projected["text_id"], value_set=previous["text_id"]).to_numpy(
        zero_copy_only=False
    )
    found = ~np.isnan(index.astype(np.float64))
    rows = np.where(found, index, 0).astype(np.int64)
    if previous.num_rows:
        same = previous["embedding_hash"].to_numpy(zero_copy_only=False)[rows]
        found &= same == projected["embedding_hash"].to_numpy(zero_copy_only=False)

    def column(name: str, fill: object) -> np.ndarray:
        values = previous[name].to_numpy(zero_copy_only=False)
        out = values[rows] if previous.num_rows else np.array([], dtype=object)
        return np.where(found, out, fill) if out.size else np.full(len(found), fill)

    return {
        "found": found,
        "cluster_label": column("cluster_label", NOISE).astype(np.int32),
        "assigned_by": column("assigned_by", "nearest_fit").astype(object),
        "facet": np.nan_to_num(column("facet", -1).astype(np.float64), nan=-1).astype(np.int32),
        "facet_distance": column("facet_distance", np.nan).astype(np.float32),
    }


def cluster_table(projected: pa.Table, **params: object) -> pa.Table:
    """``(text_id, projection)`` -> ``(text_id, cluster_label INTEGER)``, in ``text_id`` order:
    every text fitted (no sample, no reuse)."""
    projected = projected.sort_by("text_id")
    labels = cluster(to_numpy(projected, "projection"), **params)  # type: ignore[arg-type]
    return pa.table(
        {"text_id": projected["text_id"], "cluster_label": pa.array(labels, pa.int32())}
    )
