"""2-D projection of embeddings with UMAP (deterministic: fixed ``random_state``).

UMAP is *fitted* on at most ``max_fit_rows`` texts (a deterministic sample: the smallest
``md5(text_id)``), and every other text is *projected* onto that fit: its position is the
weighted mean of the positions of its ``n_neighbors`` nearest fitted texts (exact search in
the embedding space, in batches; the same initialisation umap-learn's ``transform`` uses).
:func:`project_incremental` keeps the previous build's fit and positions when the settings
and the fitted texts did not change, so adding 1 % of texts projects only those.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._numba import cached_jit
from .knn import ExactKNN, exact_knn
from .log import log, progress
from .vectors import read_arrow, to_arrow, to_numpy

PROJECTED_SCHEMA = pa.schema(
    [
        ("text_id", pa.string()),
        ("embedding_hash", pa.uint64()),
        ("projection", pa.list_(pa.float32(), 2)),
        ("projection_source", pa.string()),
        ("fit_id", pa.string()),
        ("fit_settings", pa.string()),
    ]
)
FIT, TRANSFORM, NEW = "fit", "transform", "new"
COPY_DISTANCE = 1e-6

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

    The k-nearest-neighbour graph is computed exactly (:mod:`knn`: blocked matrix products)
    and handed to UMAP, which then skips pynndescent's approximate search: deterministic,
    and no JIT.
    ``n_neighbors`` is capped at ``n - 1`` so small inputs still work; with fewer than
    ``MIN_UMAP_ROWS`` distinct vectors the first two principal components are returned
    instead (all-identical vectors all land on the origin, and so form one cluster).
    """
    n = vectors.shape[0]
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    if n < MIN_UMAP_ROWS or n_distinct(vectors) < MIN_UMAP_ROWS:
        log(f"projected {n} texts with PCA: too few distinct embeddings for UMAP")
        return _pca_2d(vectors)
    start = time.perf_counter()
    k = min(n_neighbors, n - 1)
    knn_distances, knn_indices = exact_knn(vectors, k, metric=metric)
    log(
        f"projection: exact {k}-NN graph of {n} texts in {time.perf_counter() - start:.1f}s "
        f"({threads_in_use()} threads); UMAP layout next (single-threaded: fixed random_state)"
    )
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


def threads_in_use() -> int:
    """Threads the matrix products use (torch's intra-op pool: all cores unless capped
    with OMP_NUM_THREADS / torch.set_num_threads)."""
    import torch

    return int(torch.get_num_threads())


def n_distinct(vectors: np.ndarray) -> int:
    """Number of distinct rows, from a random projection of each row (O(n d), no sort of
    the whole matrix): rows that differ map to different values with probability 1."""
    if vectors.shape[0] == 0:
        return 0
    direction = np.random.default_rng(0).normal(size=vectors.shape[1])
    return int(np.unique(vectors.astype(np.float64) @ direction).shape[0])


def _pca_2d(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    if not np.any(centred):
        return np.zeros((vectors.shape[0], 2), dtype=np.float32)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    points = centred @ vt[:2].T
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return points.astype(np.float32)


def transform(
    fit_vectors: np.ndarray,
    fit_points: np.ndarray,
    vectors: np.ndarray,
    *,
    n_neighbors: int = 15,
    metric: str = "cosine",
    index: ExactKNN | None = None,
) -> np.ndarray:
    """Place new ``vectors`` on a fitted map: the weighted mean of the positions of their
    ``n_neighbors`` nearest fitted vectors, weights ``exp(-(d - d_min) / mean(d - d_min))``
    (the nearest counts most); a copy of a fitted text (distance <= 1e-6) lands on it.
    ``index`` is an optional :class:`ExactKNN` over ``fit_vectors``, reused across batches."""
    if vectors.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.float32)
    k = min(n_neighbors, fit_vectors.shape[0])
    if index is None:
        index = ExactKNN(fit_vectors, metric=metric)
    distances, neighbours = index.query(vectors, k)
    gaps = np.maximum(distances - distances[:, :1], 0.0)
    scale = gaps.mean(axis=1, keepdims=True)
    weights = np.exp(-gaps / np.where(scale > 0, scale, 1.0))
    points = (weights[:, :, None] * fit_points[neighbours]).sum(axis=1)
    points /= weights.sum(axis=1, keepdims=True)
    copies = distances[:, 0] <= COPY_DISTANCE  # a copy of a fitted text lands on it
    points[copies] = fit_points[neighbours[copies, 0]]
    return points.astype(np.float32)


@dataclass(frozen=True)
class ProjectionSettings:
    """What the projection fit depends on; a change of any of them refits."""

    n_neighbors: int = 15
    min_dist: float = 0.0
    metric: str = "cosine"
    random_state: int = 42
    max_fit_rows: int = 50_000
    vectors: str = ""  # where the vectors come from (embedding model or input column)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def umap_params(self) -> dict[str, Any]:
        return {
            "n_neighbors": self.n_neighbors,
            "min_dist": self.min_dist,
            "metric": self.metric,
            "random_state": self.random_state,
        }


def project_incremental(
    connection: Any,
    embedded: Any,
    previous: pa.Table | None,
    settings: ProjectionSettings,
    *,
    refit: bool = False,
    refit_new_share: float = 0.2,
    batch_size: int = 8192,
) -> pa.Table:
    """Project every ``(text_id, embedding)`` row of the DuckDB relation ``embedded``.

    ``previous`` is this step's last output (or None). It is reused -- known texts keep
    their positions, only new or changed texts (by ``hash(embedding)``) are projected onto
    the old fit -- unless ``refit``, the settings changed, a fitted text is gone, or the
    new texts exceed ``refit_new_share`` of the texts of the last fit. Returns rows in
    ``text_id`` order with ``projection_source`` ``fit`` / ``transform`` / ``new``.
    """
    index = read_arrow(embedded.select("text_id, hash(embedding) as embedding_hash"))
    index = index.sort_by("text_id")
    n = index.num_rows
    if n == 0:
        return PROJECTED_SCHEMA.empty_table()
    reason = _refit_reason(index, previous, settings, refit=refit, new_share=refit_new_share)
    if reason is None:
        assert previous is not None
        return _extend_fit(connection, embedded, index, previous, settings, batch_size)
    log(f"projection: fitting UMAP ({reason})")
    sample = embedded.select("text_id").order("md5(text_id), text_id")
    sample = sample.limit(settings.max_fit_rows)
    fit_ids = read_arrow(sample)["text_id"].combine_chunks()
    fit_ids_sorted, fit_vectors = _vectors_for(connection, embedded, fit_ids)
    fit_points = project(fit_vectors, **settings.umap_params())
    in_fit = pc.is_in(index["text_id"], value_set=fit_ids_sorted).to_numpy(zero_copy_only=False)
    rest = index["text_id"].filter(pa.array(~in_fit)).combine_chunks()
    fit_hashes = index["embedding_hash"].filter(pa.array(in_fit))
    fit_id = _fit_id(settings, fit_ids_sorted, fit_hashes)
    parts = [_rows(fit_ids_sorted, fit_points, FIT)]
    parts += _project_onto(
        connection, embedded, rest, fit_vectors, fit_points, settings, TRANSFORM, batch_size
    )
    return _finish(index, parts, fit_id, settings)


def _refit_reason(
    index: pa.Table,
    previous: pa.Table | None,
    settings: ProjectionSettings,
    *,
    refit: bool,
    new_share: float,
) -> str | None:
    if refit:
        return "var refit is true"
    if previous is None or previous.num_rows == 0:
        return "first build"
    if previous["fit_settings"][0].as_py() != settings.to_json():
        return "the projection settings changed"
    known = _known(index, previous)
    is_fit = pc.equal(previous["projection_source"], FIT)
    fit_rows = previous.filter(is_fit)
    kept = pc.is_in(fit_rows["text_id"], value_set=index["text_id"].filter(pa.array(known)))
    if not pc.all(kept).as_py():
        return "texts of the last fit were removed or changed"
    # texts added since the fit: new in this build, plus those projected in earlier builds
    added_before = previous.filter(pc.equal(previous["projection_source"], NEW))["text_id"]
    still_there = pc.is_in(added_before, value_set=index["text_id"].filter(pa.array(known)))
    n_new = int((~known).sum()) + int(pc.sum(still_there).as_py() or 0)
    n_last_fit = int(pc.sum(pc.not_equal(previous["projection_source"], NEW)).as_py() or 0)
    if n_new > new_share * max(n_last_fit, 1):
        return (
            f"{n_new} texts added since the fit are more than var "
            f"refit_new_share={new_share:g} of the {n_last_fit} texts of the fit"
        )
    return None


def _known(index: pa.Table, previous: pa.Table) -> np.ndarray:
    """Per ``index`` row: the previous build has this text with the same embedding."""
    position = pc.index_in(index["text_id"], value_set=previous["text_id"])
    found = pc.is_valid(position).to_numpy(zero_copy_only=False)
    rows = pc.fill_null(position, 0).to_numpy(zero_copy_only=False)
    same = previous["embedding_hash"].to_numpy(zero_copy_only=False)[rows]
    return found & (same == index["embedding_hash"].to_numpy(zero_copy_only=False))


def _extend_fit(
    connection: Any,
    embedded: Any,
    index: pa.Table,
    previous: pa.Table,
    settings: ProjectionSettings,
    batch_size: int,
) -> pa.Table:
    known = _known(index, previous)
    known_ids = index["text_id"].filter(pa.array(known))
    kept = previous.filter(pc.is_in(previous["text_id"], value_set=known_ids))
    fit_rows = kept.filter(pc.equal(kept["projection_source"], FIT)).sort_by("text_id")
    new_ids = index["text_id"].filter(pa.array(~known)).combine_chunks()
    log(
        f"projection: reusing the previous fit ({fit_rows.num_rows} fitted texts); "
        f"{len(new_ids)} new or changed text(s) to project"
    )
    parts = [kept.select(["text_id", "projection", "projection_source"])]
    if len(new_ids):
        fit_ids, fit_vectors = _vectors_for(connection, embedded, fit_rows["text_id"])
        if not fit_ids.equals(fit_rows["text_id"].combine_chunks()):  # pragma: no cover
            raise AssertionError("the fitted texts and their embeddings are out of step")
        fit_points = to_numpy(fit_rows, "projection")
        parts += _project_onto(
            connection, embedded, new_ids, fit_vectors, fit_points, settings, NEW, batch_size
        )
    return _finish(index, parts, previous["fit_id"][0].as_py(), settings)


def _project_onto(
    connection: Any,
    embedded: Any,
    ids: pa.Array,
    fit_vectors: np.ndarray,
    fit_points: np.ndarray,
    settings: ProjectionSettings,
    source: str,
    batch_size: int,
) -> list[pa.Table]:
    """Project the texts ``ids`` onto the fit, ``batch_size`` at a time (bounded memory)."""
    total = len(ids)
    if total == 0:
        return []
    k = min(settings.n_neighbors, fit_vectors.shape[0])
    nn = ExactKNN(fit_vectors, metric=settings.metric)
    start, done, parts = time.perf_counter(), 0, []
    last_log = start
    for batch_ids, vectors in _stream_vectors(connection, embedded, ids, batch_size):
        points = transform(fit_vectors, fit_points, vectors, n_neighbors=k, index=nn)
        parts.append(_rows(batch_ids, points, source))
        done += len(batch_ids)
        if time.perf_counter() - last_log > 10 or done == total:
            progress("projection: projected onto the fit", done, total, start)
            last_log = time.perf_counter()
    return parts


def _rows(ids: pa.Array, points: np.ndarray, source: str) -> pa.Table:
    return pa.table(
        {
            "text_id": ids,
            "projection": to_arrow(points.reshape(-1, 2)),
            "projection_source": pa.array([source] * len(ids), pa.string()),
        }
    )


def _finish(
    index: pa.Table, parts: list[pa.Table], fit_id: str, settings: ProjectionSettings
) -> pa.Table:
    rows = pa.concat_tables([p.cast(_PART_SCHEMA) for p in parts]).sort_by("text_id")
    if rows.num_rows != index.num_rows:  # pragma: no cover - an internal invariant
        raise AssertionError(f"projected {rows.num_rows} of {index.num_rows} texts")
    n = rows.num_rows
    return pa.table(
        {
            "text_id": rows["text_id"],
            "embedding_hash": index["embedding_hash"],
            "projection": rows["projection"],
            "projection_source": rows["projection_source"],
            "fit_id": pa.array([fit_id] * n, pa.string()),
            "fit_settings": pa.array([settings.to_json()] * n, pa.string()),
        },
        schema=PROJECTED_SCHEMA,
    )


_PART_SCHEMA = pa.schema(
    [
        ("text_id", pa.string()),
        ("projection", pa.list_(pa.float32(), 2)),
        ("projection_source", pa.string()),
    ]
)


def _fit_id(settings: ProjectionSettings, ids: pa.Array, hashes: pa.ChunkedArray) -> str:
    digest = hashlib.md5(settings.to_json().encode())
    for text_id, value in zip(ids.to_pylist(), hashes.to_pylist(), strict=True):
        digest.update(f"{text_id}\0{value}\n".encode())
    return digest.hexdigest()[:16]


def _wanted(connection: Any, embedded: Any, ids: pa.Array) -> Any:
    wanted = connection.from_arrow(pa.table({"text_id": ids}))
    return embedded.join(wanted, "text_id").select("text_id, embedding").order("text_id")


def _vectors_for(connection: Any, embedded: Any, ids: Any) -> tuple[pa.Array, np.ndarray]:
    """The embeddings of ``ids``, in ``text_id`` order."""
    table = read_arrow(_wanted(connection, embedded, pa.array(ids)))
    return table["text_id"].combine_chunks(), to_numpy(table, "embedding")


def _stream_vectors(
    connection: Any, embedded: Any, ids: pa.Array, batch_size: int
) -> Iterator[tuple[pa.Array, np.ndarray]]:
    reader = _wanted(connection, embedded, ids).to_arrow_reader(batch_size)
    for batch in reader:
        table = pa.Table.from_batches([batch])
        yield table["text_id"].combine_chunks(), to_numpy(table, "embedding")


def project_table(embedded: pa.Table, **params: object) -> pa.Table:
    """``(text_id, embedding)`` -> ``(text_id, projection FLOAT[2])``, in ``text_id`` order."""
    embedded = embedded.sort_by("text_id")
    points = project(to_numpy(embedded, "embedding"), **params)  # type: ignore[arg-type]
    return pa.table({"text_id": embedded["text_id"], "projection": to_arrow(points)})
