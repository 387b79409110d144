"""2-D projection of embeddings with UMAP (deterministic: fixed ``random_state``).

UMAP is *fitted* on at most ``max_fit_rows`` texts (a deterministic sample: the smallest
``md5(text_id)``), and every other text is *projected* onto that fit: its position is the
weighted mean of the positions of its ``n_neighbors`` nearest fitted texts (exact search in
the embedding space, in batches; the same initialisation umap-learn's ``transform`` uses).
That search runs while UMAP lays out the fit on one core (:func:`_search_during_layout`).
:func:`project_incremental` keeps the previous build's fit and positions when the settings
and the fitted texts did not change, so adding 1 % of texts projects only those.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    if needs_pca(vectors):
        log(f"projected {n} texts with PCA: too few distinct embeddings for UMAP")
        return _pca_2d(vectors)
    graph = knn_graph(vectors, n_neighbors, metric=metric)
    return umap_layout(vectors, graph, min_dist=min_dist, metric=metric, random_state=random_state)


def needs_pca(vectors: np.ndarray) -> bool:
    """Too few distinct vectors for a UMAP layout (see ``MIN_UMAP_ROWS``)."""
    n = vectors.shape[0]
    return n < MIN_UMAP_ROWS or n_distinct(vectors) < MIN_UMAP_ROWS


def knn_graph(
    vectors: np.ndarray, n_neighbors: int, *, metric: str = "cosine"
) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``min(n_neighbors, n - 1)``-NN graph of the rows: ``(distances, indices)``."""
    start = time.perf_counter()
    k = min(n_neighbors, vectors.shape[0] - 1)
    graph = exact_knn(vectors, k, metric=metric)
    log(
        f"projection: exact {k}-NN graph of {vectors.shape[0]} texts in "
        f"{time.perf_counter() - start:.1f}s ({threads_in_use()} threads)"
    )
    return graph


def umap_layout(
    vectors: np.ndarray,
    graph: tuple[np.ndarray, np.ndarray],
    *,
    min_dist: float = 0.0,
    metric: str = "cosine",
    random_state: int = 42,
) -> np.ndarray:
    """UMAP's 2-D layout of ``vectors`` from their :func:`knn_graph` (one thread: a fixed
    ``random_state`` makes umap-learn's optimisation single-threaded)."""
    start = time.perf_counter()
    distances, indices = graph
    with cached_jit():
        import umap  # imported here: numba's cache must be set up first

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=indices.shape[1],
            min_dist=min_dist,
            metric=metric,
            random_state=random_state,
            n_jobs=1,  # a fixed random_state makes umap-learn single-threaded anyway
            precomputed_knn=(indices, distances, None),
        )
        with warnings.catch_warnings():
            # "no search index: transform() unavailable" and "n_jobs overridden": expected.
            warnings.simplefilter("ignore", UserWarning)
            points = reducer.fit_transform(vectors).astype(np.float32)
    n = vectors.shape[0]
    log(f"projected {n}/{n} texts with UMAP; layout in {time.perf_counter() - start:.1f}s")
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
    """Place new ``vectors`` on a fitted map (:func:`place` on their ``n_neighbors`` nearest
    fitted vectors). ``index`` is an optional :class:`ExactKNN` over ``fit_vectors``,
    reused across batches."""
    if vectors.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.float32)
    k = min(n_neighbors, fit_vectors.shape[0])
    if index is None:
        index = ExactKNN(fit_vectors, metric=metric)
    distances, neighbours = index.query(vectors, k)
    return place(distances, neighbours, fit_points)


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
    in_fit = pc.is_in(index["text_id"], value_set=fit_ids_sorted).to_numpy(zero_copy_only=False)
    rest = index["text_id"].filter(pa.array(~in_fit)).combine_chunks()
    fit_hashes = index["embedding_hash"].filter(pa.array(in_fit))
    fit_id = _fit_id(settings, fit_ids_sorted, fit_hashes)
    if needs_pca(fit_vectors):
        fit_points = project(fit_vectors, **settings.umap_params())
        search = _NeighbourSearch(connection, embedded, rest, fit_vectors, settings, batch_size)
        neighbours = search.run()
    else:
        graph = knn_graph(fit_vectors, settings.n_neighbors, metric=settings.metric)
        fit_points, neighbours = _search_during_layout(
            connection, embedded, rest, fit_vectors, graph, settings, batch_size
        )
    parts = [_rows(fit_ids_sorted, fit_points, FIT)]
    parts += [_rows(ids, place(d, i, fit_points), TRANSFORM) for ids, d, i in neighbours]
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
    search = _NeighbourSearch(connection, embedded, ids, fit_vectors, settings, batch_size)
    return [_rows(batch, place(d, i, fit_points), source) for batch, d, i in search.run()]


class _NeighbourSearch:
    """The nearest fitted texts of ``ids``, batch by batch: ``(ids, distances, indices)`` per
    batch. Vectors are read ``batch_size`` at a time; only the neighbour lists are kept (``k``
    floats and ints per text). :meth:`work` may run on several threads at once (each takes
    the next batch), and the results do not depend on which thread did which batch."""

    def __init__(
        self,
        connection: Any,
        embedded: Any,
        ids: pa.Array,
        fit_vectors: np.ndarray,
        settings: ProjectionSettings,
        batch_size: int,
    ) -> None:
        self.total = len(ids)
        self.k = min(settings.n_neighbors, fit_vectors.shape[0])
        self.index = ExactKNN(fit_vectors, metric=settings.metric) if self.total else None
        self._batches = enumerate(_stream_vectors(connection, embedded, ids, batch_size))
        self._lock = threading.Lock()
        self._found: dict[int, tuple[pa.Array, np.ndarray, np.ndarray]] = {}
        self._done = 0
        self._start = self._last_log = time.perf_counter()
        self.stop = False  # set to make every worker return after its current batch

    def work(self) -> None:
        """Search batches until none is left."""
        while self.total and not self.stop:
            with self._lock:  # DuckDB's reader: one thread at a time
                try:
                    number, (batch_ids, vectors) = next(self._batches)
                except StopIteration:
                    return
            assert self.index is not None
            distances, indices = self.index.query(vectors, self.k)
            with self._lock:
                self._found[number] = (batch_ids, distances, indices.astype(np.int32))
                self._done += len(batch_ids)
                now = time.perf_counter()
                if now - self._last_log > 10 or self._done == self.total:
                    progress(
                        "projection: nearest fitted texts found for",
                        self._done,
                        self.total,
                        self._start,
                    )
                    self._last_log = now

    def results(self) -> list[tuple[pa.Array, np.ndarray, np.ndarray]]:
        """``(ids, distances, indices)`` per batch, in the order of ``ids``."""
        return [self._found[number] for number in sorted(self._found)]

    def run(self) -> list[tuple[pa.Array, np.ndarray, np.ndarray]]:
        """Search every batch on this thread; the :meth:`results`."""
        self.work()
        return self.results()


def _search_during_layout(
    connection: Any,
    embedded: Any,
    rest: pa.Array,
    fit_vectors: np.ndarray,
    graph: tuple[np.ndarray, np.ndarray],
    settings: ProjectionSettings,
    batch_size: int,
) -> tuple[np.ndarray, list[tuple[pa.Array, np.ndarray, np.ndarray]]]:
    """UMAP's layout of the fit, and meanwhile the nearest fitted texts of ``rest``.

    The layout runs on one core (fixed ``random_state``), so one worker searches alongside
    it, and once it is done as many workers as threads. Every worker's matrix products use
    one thread: a batch's result is then the same whichever worker took it and whenever the
    layout finished (deterministic), and N one-thread workers run as fast as one N-thread
    search. torch, DuckDB and the layout (between epochs) release the GIL; the layout does
    not touch DuckDB.
    """
    from .runtime import import_torch

    torch = import_torch()
    threads = torch.get_num_threads()
    search = _NeighbourSearch(connection, embedded, rest, fit_vectors, settings, batch_size)
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="transform") as pool:
            workers = [pool.submit(search.work)]
            try:
                points = umap_layout(
                    fit_vectors,
                    graph,
                    min_dist=settings.min_dist,
                    metric=settings.metric,
                    random_state=settings.random_state,
                )
            except BaseException:
                search.stop = True  # the worker returns after its batch
                raise
            workers += [pool.submit(search.work) for _ in range(threads - 1)]
            for worker in workers:
                worker.result()
    finally:
        torch.set_num_threads(threads)
    return points, search.results()


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


def embeddings_reader(connection: Any, embedded: Any) -> Callable[[pa.Array], np.ndarray]:
    """A function ``text_ids -> their embeddings, row for row`` reading ``embedded`` (a
    relation with ``text_id`` and ``embedding``); what :func:`cluster_incremental` needs."""

    def read(ids: pa.Array) -> np.ndarray:
        found, vectors = _vectors_for(connection, embedded, ids)
        index = pc.index_in(ids, value_set=found)
        if index.null_count:
            raise ValueError(f"{index.null_count} text(s) have no row in the embeddings")
        return vectors[index.to_numpy(zero_copy_only=False)]

    return read


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
