"""The fit on the driver (:func:`fit_sample`) and the placement of every text on it, on the
executors (:func:`place_texts`, :func:`place_batch`)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..clustering import NOISE
from ..log import log
from .arrow import list_array, use_task_threads

PLACED_DDL = (
    "text_id string, projection array<float>, projection_source string, "
    "cluster_label int, assigned_by string"
)


@dataclass
class SavedFit:
    """What the executors need of the fit: its texts (``text_id`` order) with their vectors,
    positions and clusters (the rows :func:`fit_sample` made), and the settings."""

    rows: pa.Table
    projection: dict[str, Any]
    clusters: dict[str, Any]
    key: str = ""

    def ids(self) -> pa.Array:
        return self.rows["text_id"].combine_chunks()


def fit_sample(sample: pa.Table, settings: Mapping[str, Any]) -> SavedFit:
    """Fit the map and the clusters on ``sample`` (``text_id, embedding``: the texts of
    smallest ``md5(text_id)``) exactly as a first dbt build fits them: UMAPProjector on the
    vectors in ``text_id`` order, then
    :func:`~text_clustering.steps.clustering.cluster_incremental` (density clusters, noise
    policy, stable ids)."""
    from ..projection import UMAPProjector
    from ..steps.clustering import ClusterSettings, cluster_incremental
    from ..steps.projection import FIT, ProjectionSettings, _fit_id
    from ..vectors import to_arrow, to_numpy

    projection = ProjectionSettings.from_config(settings)
    clusters = ClusterSettings.from_config(settings)
    sample = sample.sort_by("text_id")
    vectors = to_numpy(sample, "embedding")
    hashes = pa.array(
        [
            int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
            for row in vectors
        ],
        pa.uint64(),
    )
    key = _fit_id(projection, sample["text_id"].combine_chunks(), pa.chunked_array([hashes]))
    started = time.perf_counter()
    points = UMAPProjector(**projection.umap_params()).fit(vectors).embedding_
    n = sample.num_rows
    projected = pa.table(
        {
            "text_id": sample["text_id"],
            "embedding_hash": hashes,
            "projection": to_arrow(points.reshape(-1, 2)),
            "projection_source": pa.array([FIT] * n, pa.string()),
            "fit_id": pa.array([key] * n, pa.string()),
        }
    )
    clustered = cluster_incremental(
        projected, None, clusters, vectors_reader(sample["text_id"], vectors)
    )
    log(f"spark: fitted {n} texts on the driver in {time.perf_counter() - started:.1f}s")
    rows = projected.append_column("embedding", sample["embedding"])
    for name in ("cluster_label", "assigned_by", "cluster_fit"):
        rows = rows.append_column(name, clustered[name])
    return SavedFit(rows, asdict(projection), asdict(clusters), key)


def vectors_reader(ids: Any, vectors: np.ndarray) -> Callable[[Any], np.ndarray]:
    """``text_ids -> their vectors`` over ``ids`` (sorted) and their ``vectors``, row for row."""
    known = pa.array(ids) if not isinstance(ids, pa.ChunkedArray) else ids.combine_chunks()

    def read(wanted: Any) -> np.ndarray:
        position = pc.index_in(wanted, value_set=known)
        if position.null_count:  # pragma: no cover - an internal invariant
            raise AssertionError(f"{position.null_count} text(s) are not in the fit")
        return vectors[position.to_numpy(zero_copy_only=False)]

    return read


_RESTORED: dict[str, tuple[Any, Any, np.ndarray]] = {}


def _restored(fit: SavedFit) -> tuple[Any, Any, np.ndarray]:
    """The projector and the clusterer of ``fit``, rebuilt once per Python worker."""
    if fit.key not in _RESTORED:
        from ..projection import UMAPProjector
        from ..steps.clustering import ClusterSettings, restore_clusterer
        from ..steps.projection import ProjectionSettings
        from ..vectors import to_numpy

        _RESTORED.clear()
        vectors = to_numpy(fit.rows, "embedding")
        points = to_numpy(fit.rows, "projection")
        params = ProjectionSettings(**fit.projection).umap_params()
        projector = UMAPProjector.restore(vectors, points, **params)
        projector.index()  # the search index, built once here
        clusterer = restore_clusterer(
            fit.rows, fit.rows, ClusterSettings(**fit.clusters), vectors_reader(fit.ids(), vectors)
        )
        if fit.clusters["noise_policy"] == "centroid":
            clusterer.centroids()  # once per worker, not once per batch
        _RESTORED[fit.key] = (projector, clusterer, points)
    return _RESTORED[fit.key]


def place_batch(fit: SavedFit, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
    """``(text_id, embedding)`` -> ``(text_id, projection, projection_source, cluster_label,
    assigned_by)``: a fitted text keeps its fit, another is placed by
    ``UMAPProjector.transform`` and assigned by the restored clusterer (nearest fitted point
    within eps, then the noise policy), as ``int_texts_projected`` / ``int_texts_clustered``
    do for texts outside the sample."""
    from ..steps.projection import FIT, TRANSFORM
    from ..vectors import to_numpy

    projector, clusterer, fit_points = _restored(fit)
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    ids = table["text_id"].combine_chunks()
    n = len(ids)
    position = pc.index_in(ids, value_set=fit.ids())
    in_fit = pc.is_valid(position).to_numpy(zero_copy_only=False)
    rows = pc.fill_null(position, 0).to_numpy(zero_copy_only=False)
    points = np.zeros((n, 2), np.float32)
    labels = np.full(n, NOISE, np.int32)
    by = np.empty(n, dtype=object)
    fit_labels = fit.rows["cluster_label"].to_numpy(zero_copy_only=False)
    fit_by = np.asarray(fit.rows["assigned_by"].to_pylist(), dtype=object)
    points[in_fit] = fit_points[rows[in_fit]]
    labels[in_fit] = fit_labels[rows[in_fit]]
    by[in_fit] = fit_by[rows[in_fit]]
    rest = np.flatnonzero(~in_fit)
    if rest.size:
        vectors = to_numpy(table.take(pa.array(rest)), "embedding")
        placed = projector.transform(vectors)
        new, moved = clusterer.assign(placed, vectors)
        points[rest], labels[rest] = placed, new
        by[rest] = np.where(moved, "noise_policy", "nearest_fit")
    return pa.RecordBatch.from_arrays(
        [
            ids,
            list_array(points),
            pa.array(np.where(in_fit, FIT, TRANSFORM).tolist(), pa.string()),
            pa.array(labels, pa.int32()),
            pa.array(by.tolist(), pa.string()),
        ],
        names=["text_id", "projection", "projection_source", "cluster_label", "assigned_by"],
    )


def place_texts(spark: Any, embedded: Any, fit: SavedFit) -> Any:
    """Every embedded text placed on the broadcast ``fit`` (:func:`place_batch`), a map over
    partitions in batches of at most :data:`BATCH_ROWS`."""
    shared = spark.sparkContext.broadcast(fit)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        use_task_threads()
        saved = shared.value
        for batch in batches:
            yield place_batch(saved, batch)

    return embedded.mapInArrow(run, PLACED_DDL)
