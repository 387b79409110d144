"""The projection step (int_texts_projected): which texts UMAP is fitted on, what a rebuild
reuses, and streaming the vectors out of DuckDB in batches.

UMAP is fitted on at most ``max_fit_rows`` texts (a deterministic sample: the smallest
``md5(text_id)``); every other text is placed on that fit by
:meth:`~text_clustering.projection.UMAPProjector.place`. Their neighbour search runs while
UMAP lays out the fit on one core (:func:`_search_during_layout`). A rebuild keeps the
previous fit and positions when the settings and the fitted texts did not change and few
texts were added, so adding 1 % of texts projects only those.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import read_bool, read_float, read_int, read_optional_int, read_str
from ..knn import ExactKNN
from ..log import log, progress
from ..projection import UMAPProjector, import_umap, knn_graph, needs_pca
from ..runtime import one_blas_thread, threads_in_use, use_threads
from ..vectors import read_arrow, to_arrow, to_numpy
from .reuse import read_previous

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
BATCH_SIZE = 8192
Found = list[tuple[pa.Array, np.ndarray, np.ndarray]]  # (ids, distances, indices) per batch


@dataclass(frozen=True)
class ProjectionSettings:
    """What the projection fit depends on; a change of any of them refits."""

    n_neighbors: int = 15
    min_dist: float = 0.0
    metric: str = "cosine"
    random_state: int = 42
    max_fit_rows: int = 30_000
    n_epochs: int | None = None  # None: projection.layout_epochs
    vectors: str = ""  # where the vectors come from (embedding model or input column)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProjectionSettings:
        column = read_str("embedding_column", config.get("embedding_column"), required=False)
        model = read_str("embedding_model", config.get("embedding_model"))
        return cls(
            n_neighbors=read_int("n_neighbors", config.get("n_neighbors"), minimum=2),
            min_dist=read_float("min_dist", config.get("min_dist"), minimum=0.0),
            metric=read_str("metric", config.get("metric")),  # type: ignore[arg-type]
            random_state=read_int("random_state", config.get("random_state")),
            max_fit_rows=read_int("max_fit_rows", config.get("max_fit_rows"), minimum=2),
            n_epochs=read_optional_int("n_epochs", config.get("n_epochs"), minimum=1),
            vectors=f"column:{column}" if column else f"model:{model}",
        )

    def to_json(self) -> str:
        """The settings as the fit records them (``n_epochs`` only when set: fits made
        before the var existed stay reusable)."""
        settings = asdict(self)
        if settings["n_epochs"] is None:
            del settings["n_epochs"]
        return json.dumps(settings, sort_keys=True)

    def umap_params(self) -> dict[str, Any]:
        """The :class:`~text_clustering.projection.UMAPProjector` parameters."""
        return {
            "n_neighbors": self.n_neighbors,
            "min_dist": self.min_dist,
            "metric": self.metric,
            "random_state": self.random_state,
            "n_epochs": self.n_epochs,
        }


def project_texts(connection: Any, this: Any, embedded: Any, config: Mapping[str, Any]) -> pa.Table:
    """int_texts_projected: every ``(text_id, embedding)`` row of the DuckDB relation
    ``embedded`` with its position, from dbt config (vars n_neighbors, min_dist, metric,
    random_state, n_epochs, max_fit_rows, refit, refit_new_share, n_threads, embedding_*)."""
    settings = ProjectionSettings.from_config(config)
    use_threads(read_optional_int("n_threads", config.get("n_threads"), minimum=1))
    return project_incremental(
        connection,
        embedded,
        read_previous(connection, this, PROJECTED_SCHEMA),
        settings,
        refit=read_bool("refit", config.get("refit")),
        refit_new_share=read_float("refit_new_share", config.get("refit_new_share"), minimum=0.0),
    )


def preload_layout() -> threading.Thread | None:
    """Import umap-learn (with scikit-learn, SciPy and numba's cached code: ~3.5 s on one
    core) on a background thread, for a fit about to come: the embedding step calls it on a
    first build, whose projection then fits UMAP. Those steps mostly wait on DuckDB (one
    core or less), so the import takes an idle core there instead of the layout's, which
    runs one core from the graph to its end (docs/performance.md). The fit's own import
    waits for this one if it is still running (:func:`~text_clustering._numba.cached_jit`'s
    lock); a failure here is left for that import to report. None when umap is imported or
    being imported."""
    global _preloading
    with _preload_lock:
        if _preloading is not None or "umap" in sys.modules:
            return None
        _preloading = threading.Thread(target=_import_quietly, name="preload-umap")
    _preloading.start()
    return _preloading


def _import_quietly() -> None:
    start = time.perf_counter()
    try:
        import_umap()
    except Exception:  # the fit's own import raises it where it is needed
        return
    log(f"projection: umap-learn imported ahead of the fit in {time.perf_counter() - start:.1f}s")


_preload_lock = threading.Lock()
_preloading: threading.Thread | None = None


def project_incremental(
    connection: Any,
    embedded: Any,
    previous: pa.Table | None,
    settings: ProjectionSettings,
    *,
    refit: bool = False,
    refit_new_share: float = 0.2,
    batch_size: int = BATCH_SIZE,
) -> pa.Table:
    """Project every row of ``embedded``, reusing ``previous`` (this step's last output)
    unless ``refit``, the settings changed, a fitted text is gone or changed, or the texts
    added since the fit exceed ``refit_new_share`` of it. Rows in ``text_id`` order with
    ``projection_source`` ``fit`` / ``transform`` / ``new``."""
    index = read_arrow(embedded.select("text_id, hash(embedding) as embedding_hash"))
    index = index.sort_by("text_id")
    if index.num_rows == 0:
        return PROJECTED_SCHEMA.empty_table()
    reason = _refit_reason(index, previous, settings, refit=refit, new_share=refit_new_share)
    if reason is None:
        assert previous is not None
        return _extend_fit(connection, embedded, index, previous, settings, batch_size)
    log(f"projection: fitting UMAP ({reason})")
    sample = embedded.select("text_id").order("md5(text_id), text_id")
    fit_ids = read_arrow(sample.limit(settings.max_fit_rows))["text_id"].combine_chunks()
    fit_ids_sorted, fit_vectors = _vectors_for(connection, embedded, fit_ids)
    in_fit = pc.is_in(index["text_id"], value_set=fit_ids_sorted).to_numpy(zero_copy_only=False)
    rest = index["text_id"].filter(pa.array(~in_fit)).combine_chunks()
    fit_hashes = index["embedding_hash"].filter(pa.array(in_fit))
    search = _NeighbourSearch(connection, embedded, rest, fit_vectors, settings, batch_size)
    projector = UMAPProjector(**settings.umap_params())
    if needs_pca(fit_vectors):
        projector.fit(fit_vectors)
        found = search.run()
    else:
        found = _search_during_layout(projector, fit_vectors, search)
    parts = [_rows(fit_ids_sorted, projector.embedding_, FIT)]
    parts += [_rows(ids, projector.place(d, i), TRANSFORM) for ids, d, i in found]
    return _finish(index, parts, _fit_id(settings, fit_ids_sorted, fit_hashes), settings)


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
    known_ids = index["text_id"].filter(pa.array(_known(index, previous)))
    fit_rows = previous.filter(pc.equal(previous["projection_source"], FIT))
    if not pc.all(pc.is_in(fit_rows["text_id"], value_set=known_ids)).as_py():
        return "texts of the last fit were removed or changed"
    # texts added since the fit: new in this build, plus those projected in earlier builds
    added_before = previous.filter(pc.equal(previous["projection_source"], NEW))["text_id"]
    still_there = pc.is_in(added_before, value_set=known_ids)
    n_new = index.num_rows - len(known_ids) + int(pc.sum(still_there).as_py() or 0)
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
        projector = UMAPProjector.restore(
            fit_vectors, to_numpy(fit_rows, "projection"), **settings.umap_params()
        )
        search = _NeighbourSearch(connection, embedded, new_ids, fit_vectors, settings, batch_size)
        parts += [_rows(ids, projector.place(d, i), NEW) for ids, d, i in search.run()]
    return _finish(index, parts, previous["fit_id"][0].as_py(), settings)


class _NeighbourSearch:
    """The nearest fitted texts of ``ids``, batch by batch: ``(ids, distances, indices)`` per
    batch. Vectors are read ``batch_size`` at a time; only the neighbour lists are kept.
    :meth:`work` may run on several threads at once (each takes the next batch); the
    results do not depend on which thread did which batch."""

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
        self._start: float | None = None  # when the first worker starts (not the graph before)
        self._last_log = time.perf_counter()
        self.stop = False  # set to make every worker return after its current batch

    def work(self) -> None:
        """Search batches until none is left."""
        while self.total and not self.stop:
            with self._lock:  # DuckDB's reader: one thread at a time
                if self._start is None:
                    self._start = self._last_log = time.perf_counter()
                try:
                    number, (batch_ids, vectors) = next(self._batches)
                except StopIteration:
                    return
            assert self.index is not None and self._start is not None
            distances, indices = self.index.query(vectors, self.k)
            with self._lock:
                self._found[number] = (batch_ids, distances, indices.astype(np.int32))
                self._done += len(batch_ids)
                now = time.perf_counter()
                if now - self._last_log > 10 or self._done == self.total:
                    verb = "projection: nearest fitted texts found for"
                    progress(verb, self._done, self.total, self._start)
                    self._last_log = now

    def results(self) -> Found:
        """``(ids, distances, indices)`` per batch, in the order of ``ids``."""
        return [self._found[number] for number in sorted(self._found)]

    def run(self) -> Found:
        """Search every batch on as many workers as threads, each product on one BLAS thread
        (the same result as one worker); the :meth:`results`."""
        threads = threads_in_use()
        with one_blas_thread(), ThreadPoolExecutor(threads, "search") as pool:
            for worker in [pool.submit(self.work) for _ in range(threads)]:
                worker.result()
        return self.results()


def _search_during_layout(
    projector: UMAPProjector, fit_vectors: np.ndarray, search: _NeighbourSearch
) -> Found:
    """Fit ``projector`` and meanwhile run ``search``.

    The graph is computed first on every thread; the layout then runs on one core (fixed
    ``random_state``), so one worker searches alongside it, and once it is done as many
    workers as threads. Every matrix product uses one BLAS thread: a batch's result is
    then the same whichever worker took it and whenever the layout finished
    (deterministic). NumPy's BLAS, DuckDB and the layout's epochs (numba code compiled with
    ``nogil``: :mod:`text_clustering._numba`) release the GIL.
    """
    graph = knn_graph(fit_vectors, projector.n_neighbors, metric=projector.metric)
    threads = threads_in_use()
    with one_blas_thread(), ThreadPoolExecutor(threads, "transform") as pool:
        workers = [pool.submit(search.work)]
        try:
            projector.fit(fit_vectors, graph=graph)
        except BaseException:
            search.stop = True  # the worker returns after its batch
            raise
        workers += [pool.submit(search.work) for _ in range(threads - 1)]
        for worker in workers:
            worker.result()
    return search.results()


def _rows(ids: pa.Array, points: np.ndarray, source: str) -> pa.Table:
    return pa.table(
        {
            "text_id": ids,
            "projection": to_arrow(points.reshape(-1, 2)),
            "projection_source": pa.array([source] * len(ids), pa.string()),
        }
    )


_PART_SCHEMA = pa.schema(
    [
        ("text_id", pa.string()),
        ("projection", pa.list_(pa.float32(), 2)),
        ("projection_source", pa.string()),
    ]
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


def embeddings_reader(connection: Any, embedded: Any) -> Any:
    """A function ``text_ids -> their embeddings, row for row`` reading ``embedded`` (a
    relation with ``text_id`` and ``embedding``)."""

    def read(ids: pa.Array) -> np.ndarray:
        found, vectors = _vectors_for(connection, embedded, ids)
        index = pc.index_in(ids, value_set=found)
        if index.null_count:  # pragma: no cover - an internal invariant
            raise AssertionError(f"{index.null_count} text(s) have no row in the embeddings")
        return vectors[index.to_numpy(zero_copy_only=False)]

    return read


def _stream_vectors(
    connection: Any, embedded: Any, ids: pa.Array, batch_size: int
) -> Iterator[tuple[pa.Array, np.ndarray]]:
    reader = _wanted(connection, embedded, ids).to_arrow_reader(batch_size)
    for batch in reader:
        table = pa.Table.from_batches([batch])
        yield table["text_id"].combine_chunks(), to_numpy(table, "embedding")
