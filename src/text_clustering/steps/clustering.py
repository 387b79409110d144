"""The clustering step (int_texts_clustered): which texts the clusters are fitted on, and
what a rebuild keeps.

Clusters are fitted (:class:`~text_clustering.clustering.DensityClusterer`) on the texts UMAP
was fitted on; every other text is assigned. When the previous build was made from the
same projection fit and settings, known texts keep their labels and only new or changed
texts are assigned, so adding texts never renumbers clusters (nor re-asks the LLM). A new fit
(a refit) gives every cluster that continues one of the previous build its id, and the others
ids never used before (:mod:`~text_clustering.lineage`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..clustering import ALGORITHMS, AUTO_EPS_QUANTILE, NOISE, DensityClusterer
from ..config import read_float, read_int, read_optional_float, read_str
from ..lineage import match_clusters, relabel
from ..log import log
from ..vectors import read_arrow, to_numpy
from .projection import embeddings_reader
from .reuse import read_previous

CLUSTERED_SCHEMA = pa.schema(
    [
        ("text_id", pa.string()),
        ("embedding_hash", pa.uint64()),
        ("cluster_label", pa.int32()),
        ("assigned_by", pa.string()),
        ("fit_id", pa.string()),
        ("cluster_fit", pa.string()),
        ("previous_cluster_label", pa.int32()),
    ]
)


@dataclass(frozen=True)
class ClusterSettings:
    """What the clustering of one build depends on (the :class:`DensityClusterer` params)."""

    algorithm: str = "dbscan"
    eps: float | None = None  # None: chosen from the data (auto_eps)
    min_samples: int = 5
    noise_policy: str = "centroid"
    noise_max_distance: float | None = 2.0  # in units of eps; None: no limit
    target_noise_share: float = 0.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClusterSettings:
        get = config.get
        return cls(
            algorithm=read_str("clustering_algorithm", get("clustering_algorithm")),  # type: ignore[arg-type]
            eps=read_optional_float("eps", get("eps"), minimum=0.0, exclusive=True),
            min_samples=read_int("min_samples", get("min_samples"), minimum=2),
            noise_policy=read_str("noise_policy", get("noise_policy")),  # type: ignore[arg-type]
            noise_max_distance=read_optional_float(
                "noise_max_distance", get("noise_max_distance"), minimum=0.0
            ),
            target_noise_share=read_float(
                "target_noise_share", get("target_noise_share"), minimum=0.0
            ),
        )

    def clusterer(self) -> DensityClusterer:
        return DensityClusterer(**asdict(self))


def cluster_texts(
    connection: Any, this: Any, projected: Any, embedded: Any, config: Mapping[str, Any]
) -> pa.Table:
    """int_texts_clustered: a cluster for every row of ``projected`` (int_texts_projected),
    from dbt config (vars clustering_algorithm, eps, min_samples, noise_policy,
    noise_max_distance, target_noise_share); ``embedded`` gives the embeddings the
    ``centroid`` noise policy reads."""
    settings = ClusterSettings.from_config(config)
    columns = "text_id, embedding_hash, projection, projection_source, fit_id"
    return cluster_incremental(
        read_arrow(projected.select(columns)),
        read_previous(connection, this, CLUSTERED_SCHEMA),
        settings,
        embeddings_reader(connection, embedded),
    )


def cluster_incremental(
    projected: pa.Table,
    previous: pa.Table | None,
    settings: ClusterSettings,
    embeddings: Any = None,
) -> pa.Table:
    """``(text_id, embedding_hash, projection, projection_source, fit_id)`` of every text ->
    its cluster. ``embeddings(text_ids)`` returns those texts' embeddings, row for row (read
    only when the noise policy has noise to move)."""
    projected = projected.sort_by("text_id")
    points = to_numpy(projected, "projection")
    fit_id = _fit_id_of(projected)
    ids = projected["text_id"]
    n = projected.num_rows
    is_fit = pc.equal(projected["projection_source"], "fit").to_numpy(zero_copy_only=False)
    labels = np.full(n, NOISE, dtype=np.int32)
    assigned_by = np.full(n, "nearest_fit", dtype=object)
    if _reusable(previous, fit_id, settings):
        assert previous is not None
        clusterer, fit_info, known = _restore(previous, projected, settings, embeddings)
        labels[known["found"]] = known["cluster_label"][known["found"]]
        assigned_by[known["found"]] = known["assigned_by"][known["found"]]
        before = np.where(known["found"], known["previous_cluster_label"], NOISE - 1)
        todo = ~known["found"]
        log(f"clusters: reusing the fit of the previous build; {int(todo.sum())} new text(s)")
    else:
        fitted = np.flatnonzero(is_fit)
        vectors = None if embeddings is None else lambda r: embeddings(ids.take(fitted[r]))
        clusterer = settings.clusterer().fit(points[fitted], vectors)
        labels[fitted] = clusterer.labels_
        assigned_by[fitted] = np.where(clusterer.moved_, "noise_policy", settings.algorithm)
        fit_info = {**asdict(settings), "eps_used": clusterer.eps_, "n_fit": int(fitted.size)}
        _log_fit(settings, clusterer)
        todo = ~is_fit
        before = np.full(n, NOISE - 1, dtype=np.int64)  # set by _stable_ids
    if todo.any():
        rows = np.flatnonzero(todo)
        vectors = None if embeddings is None else lambda r: embeddings(ids.take(rows[r]))
        new, moved = clusterer.assign(points[rows], vectors)
        labels[rows] = new
        assigned_by[rows[moved]] = "noise_policy"
        log(f"clusters: assigned {rows.size} text(s) to the nearest fitted cluster")
    if "next_id" not in fit_info:  # a new fit: its clusters take stable ids
        labels, before, fit_info = _stable_ids(labels, fit_info, previous, projected)
    return pa.table(
        {
            "text_id": ids,
            "embedding_hash": projected["embedding_hash"],
            "cluster_label": pa.array(labels, pa.int32()),
            "assigned_by": pa.array(assigned_by.tolist(), pa.string()),
            "fit_id": pa.array([fit_id] * n, pa.string()),
            "cluster_fit": pa.array([json.dumps(fit_info, sort_keys=True)] * n, pa.string()),
            # NOISE - 1: none (a text new since the fit, or the first fit)
            "previous_cluster_label": pa.array(before, pa.int32(), mask=before < NOISE),
        },
        schema=CLUSTERED_SCHEMA,
    )


def _stable_ids(
    labels: np.ndarray, fit_info: dict[str, Any], previous: pa.Table | None, projected: pa.Table
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A new fit's clusters renumbered to stable ids (:func:`~text_clustering.lineage.
    match_clusters`: a cluster continuing one of the previous build's keeps its id, others get
    ids never used); each text's cluster in the previous build (``NOISE - 1``: none), from
    which fct_cluster_lineage tells what became of every cluster; and the fit's info with
    the ids' high-water mark, its key and the key of the fit it follows. A text counts as
    there before by its ``text_id`` alone, even when its vector changed (another embedding
    model, backend or export): the same texts together again are the same cluster."""
    before = None if previous is None or previous.num_rows == 0 else previous
    known = _align(before, projected, same_vector=False) if before is not None else None
    last = json.loads(before["cluster_fit"][0].as_py()) if before is not None else {}
    used = 0
    if before is not None:
        used = int(before["cluster_label"].to_numpy(zero_copy_only=False).max()) + 1
    existed = known["found"] if known else np.zeros(labels.size, dtype=bool)
    old = known["cluster_label"] if known else np.full(labels.size, NOISE)
    match = match_clusters(
        old, labels, existed=existed, next_id=max(int(last.get("next_id", 0)), used)
    )
    if before is not None:
        kept = sum(1 for r in match.lineage if r["change"] == "survived")
        log(
            f"clusters: refit matched to the previous build: {kept} cluster(s) keep their id, "
            f"{len(match.ids) - kept} get new ones (next id {match.next_id})"
        )
    info = {**fit_info, "next_id": match.next_id, "refit_of": last.get("fit_key")}
    info["fit_key"] = hashlib.md5(json.dumps(info, sort_keys=True).encode()).hexdigest()
    stable = relabel(labels, match.ids).astype(np.int32)
    return stable, np.where(existed, old, NOISE - 1), info


def restore_clusterer(
    clustered: pa.Table, projected: pa.Table, settings: ClusterSettings, embeddings: Any
) -> DensityClusterer:
    """The fitted clusterer of :func:`cluster_incremental`'s output ``clustered`` (at least
    its fitted texts) and their ``projected`` rows, as a rebuild restores it: what assigns
    other texts (the Spark map calls it once per worker on the broadcast fit)."""
    return _restore(clustered, projected.sort_by("text_id"), settings, embeddings)[0]


def _restore(
    previous: pa.Table, projected: pa.Table, settings: ClusterSettings, embeddings: Any
) -> tuple[DensityClusterer, dict[str, Any], dict[str, np.ndarray]]:
    """The previous build's fit: a clusterer restored from its fitted texts, the fit's info,
    and what it knows of every projected text (:func:`_align`)."""
    fit_info = json.loads(previous["cluster_fit"][0].as_py())
    known = _align(previous, projected)
    found = known["found"]
    is_fit = pc.equal(projected["projection_source"], "fit").to_numpy(zero_copy_only=False)
    labels, by = known["cluster_label"], known["assigned_by"]
    members = found & is_fit & np.isin(by, ALGORITHMS) & (labels != NOISE)
    ids = projected["text_id"]

    def member_vectors() -> tuple[np.ndarray, np.ndarray]:
        return embeddings(ids.filter(pa.array(members))), labels[members]

    clusterer = DensityClusterer.restore(
        to_numpy(projected, "projection")[found & is_fit],
        labels[found & is_fit],
        float(fit_info["eps_used"]),
        member_vectors=None if embeddings is None else member_vectors,
        **asdict(settings),
    )
    return clusterer, fit_info, known


def _log_fit(settings: ClusterSettings, clusterer: DensityClusterer) -> None:
    density = clusterer.density_labels_
    how = "given" if settings.eps is not None else f"auto, q={AUTO_EPS_QUANTILE}"
    log(
        f"clusters: {settings.algorithm} on {density.size} fitted texts, "
        f"eps={clusterer.eps_:.4g} ({how}): {len(set(density.tolist()) - {NOISE})} clusters, "
        f"{float(np.mean(density == NOISE)) if density.size else 0:.1%} noise"
    )
    if clusterer.moved_.any():
        moved = int(clusterer.moved_.sum())
        log(f"clusters: noise policy {settings.noise_policy} moved {moved} text(s)")


def _fit_id_of(table: pa.Table) -> str:
    ids = table["fit_id"].unique().to_pylist() if table.num_rows else [""]
    return str(ids[0] or "")


def _reusable(previous: pa.Table | None, fit_id: str, settings: ClusterSettings) -> bool:
    """The previous build was clustered on the same projection fit with the same settings."""
    if previous is None or previous.num_rows == 0 or _fit_id_of(previous) != fit_id:
        return False
    try:
        info = json.loads(previous["cluster_fit"][0].as_py())
    except (KeyError, TypeError, ValueError):
        return False
    return all(info.get(key) == value for key, value in asdict(settings).items())


def _align(
    previous: pa.Table, projected: pa.Table, *, same_vector: bool = True
) -> dict[str, np.ndarray]:
    """The previous row of every projected text (``found`` False where there is none, or,
    with ``same_vector``, where its embedding changed)."""
    index = pc.index_in(projected["text_id"], value_set=previous["text_id"])
    found = pc.is_valid(index).to_numpy(zero_copy_only=False)
    rows = pc.fill_null(index, 0).to_numpy(zero_copy_only=False)
    if same_vector:
        same = previous["embedding_hash"].to_numpy(zero_copy_only=False)[rows]
        found &= same == projected["embedding_hash"].to_numpy(zero_copy_only=False)
    labels = previous["cluster_label"].to_numpy(zero_copy_only=False)[rows]
    by = previous["assigned_by"].to_numpy(zero_copy_only=False)[rows]
    earlier = np.full(rows.size, NOISE - 1, dtype=np.int64)
    if "previous_cluster_label" in previous.column_names:
        column = pc.fill_null(previous["previous_cluster_label"], NOISE - 1)
        earlier = column.to_numpy(zero_copy_only=False)[rows]
    return {
        "found": found,
        "cluster_label": np.where(found, labels, NOISE).astype(np.int32),
        "assigned_by": np.where(found, by, "nearest_fit").astype(object),
        "previous_cluster_label": np.where(found, earlier, NOISE - 1),
    }
