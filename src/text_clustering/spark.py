"""The pipeline on Apache Spark: the same fit and assignment as the dbt + DuckDB path, with
the per-text work on executors.

The algorithm is the DuckDB path's, called, never rewritten:

1. **texts** (:func:`staged_texts`): ``stg_texts``' ids (the id column as text, or the md5 of
   the text with ``-2``, ``-3`` for repeats) and ``is_embeddable``;
2. **embedding** (:func:`embed_missing`): the texts the cache lacks, ``mapInArrow`` over
   partitions sorted by text length, each Python worker loading the model once
   (:func:`~text_clustering.embed.embed_texts`); the cache is parquet, keyed exactly as
   ``int_embedding_cache`` (``md5(model || chr(0) || text)``), so vectors move between the
   two paths;
3. **fit on the driver** (:func:`fit_sample`): the at most ``max_fit_rows`` texts of smallest
   ``md5(text_id)``, collected; :class:`~text_clustering.projection.UMAPProjector` and
   :func:`~text_clustering.steps.clustering.cluster_incremental` on them, as a first dbt
   build does; the fit (vectors, positions, clusters) is broadcast;
4. **placement** (:func:`place_texts`): every text projected and assigned onto the fit, a
   ``mapInArrow`` over batches of bounded size (``UMAPProjector.transform`` and the
   clusterer :func:`~text_clustering.steps.clustering.restore_clusterer` rebuilds once per
   worker);
5. **labels on the driver** (:func:`label_fit`): facets, representatives (a ``row_number()``
   window, the Spark twin of the dbt models' ``QUALIFY``), the topic tree, c-TF-IDF
   keywords, the prompts, the cached LLM step and the naming, all on the fitted texts only,
   by the step functions of the dbt models (their small inputs as in-memory DuckDB
   relations over Arrow); the LLM cache is a parquet folder;
6. **marts** (:func:`write_marts`): ``fct_text_clusters`` and ``dim_clusters`` with the
   DuckDB marts' columns and types, as parquet, by Spark SQL that reads like their dbt SQL.

``python -m text_clustering spark`` runs it (:func:`run`); :func:`local_cluster` starts a
standalone Spark master and workers on 127.0.0.1 (tests, benchmarks).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .clustering import ALGORITHMS, NOISE
from .config import is_unset, read_int, read_str
from .errors import ConfigError, EngineError, InputError
from .log import log
from .vectors import read_arrow

# The dbt vars the Spark path reads, with dbt_project.yml's defaults (a test checks them).
DEFAULT_VARS: dict[str, Any] = {
    "source_path": None,
    "source_table": None,
    "text_column": "text",
    "id_column": None,
    "embedding_column": None,
    "embedding_model": "all-MiniLM-L6-v2",
    "embedding_backend": "onnx",
    "embedding_batch_size": 64,
    "n_neighbors": 15,
    "min_dist": 0.0,
    "metric": "cosine",
    "random_state": 42,
    "n_epochs": None,
    "max_fit_rows": 50000,
    "clustering_algorithm": "dbscan",
    "eps": None,
    "min_samples": 5,
    "noise_policy": "centroid",
    "noise_max_distance": 2.0,
    "target_noise_share": 0.0,
    "max_top_topics": 12,
    "headline_level": None,
    "samples_per_cluster": 10,
    "n": 1,
    "default_label": "Unclassified",
    "llm_model": "gpt-4o-mini",
    "redact": ["private_key", "api_key", "bearer_token", "email", "card", "ip", "phone"],
    "query_title": "Examples",
    "context": None,
    "system_prompt": None,
    "examples": None,
    "use_default_structured_output": True,
    "input_batch_size": 4,
    "max_example_chars": 1000,
    "max_prompt_chars": 12000,
    "llm_temperature": 0.0,
    "llm_seed": 42,
    "llm_timeout": 60,
    "llm_max_attempts": 4,
    "llm_time_budget": 900,
    "llm_dry_run": False,
    "llm_retry_failed": False,
}
BATCH_ROWS = 4096  # rows per Arrow batch in the maps (bounds a worker's memory)
EMBEDDING = "array<float>"
PLACED_DDL = (
    "text_id string, projection array<float>, projection_source string, "
    "cluster_label int, assigned_by string"
)
CACHE_DDL = "embedding_key string, embedding_model string, embedding array<float>"
MASTER_TIMEOUT = 5.0  # seconds to reach a master before giving up
EXECUTOR_TIMEOUT = 90.0  # seconds for a standalone master to give the application executors


def settings_from(given: Mapping[str, Any]) -> dict[str, Any]:
    """The vars of a run: :data:`DEFAULT_VARS` updated with ``given`` (unknown names refused,
    so a typo does not silently keep a default; ``"None"``, as dbt renders a null var in a
    yml config, is None)."""
    unknown = sorted(set(given) - set(DEFAULT_VARS))
    if unknown:
        raise ConfigError(
            f"unknown var(s) {', '.join(unknown)} for the Spark path; it reads: "
            f"{', '.join(sorted(DEFAULT_VARS))}"
        )
    return {**DEFAULT_VARS, **{k: None if is_unset(v) else v for k, v in given.items()}}


# --- the cluster: reachable before any work ------------------------------------------------


def check_master(master: str, timeout: float = MASTER_TIMEOUT) -> None:
    """Raise :class:`EngineError` unless every ``host:port`` of a ``spark://`` master URL
    accepts a TCP connection within ``timeout`` seconds (``local[...]`` needs none)."""
    if master.startswith("local"):
        return
    if not master.startswith("spark://"):
        raise ConfigError(
            f"--master {master!r}: give spark://HOST:PORT (a standalone master) or local[N]"
        )
    for address in master[len("spark://") :].split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                pass
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"the Spark master {master} cannot be reached ({host}:{port}: {exc}). Start it "
                "(spark-class org.apache.spark.deploy.master.Master), or fix --master."
            ) from None


def session(master: str, *, app_name: str = "text_clustering", conf: Mapping[str, str] = {}) -> Any:
    """A SparkSession on ``master`` (checked first), executors running this Python with this
    package importable and the offline model settings; waits until a standalone master
    gave it executors, else :class:`EngineError`."""
    check_master(master)
    from pyspark.sql import SparkSession

    # the executors' Python (PySpark reads it from the driver's environment): this one,
    # unless set (on a real cluster: the Python with text_clustering installed)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    package_root = str(Path(__file__).resolve().parents[1])
    env = {
        "PYTHONPATH": os.pathsep.join(
            p for p in [package_root, os.environ.get("PYTHONPATH", "")] if p
        ),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for name in ("TEXT_CLUSTERING_ONNX_DIR", "NUMBA_CACHE_DIR"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.executor.processTreeMetrics.enabled", "true")
        .config("spark.executor.metrics.pollingInterval", "500ms")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for name, value in env.items():
        builder = builder.config(f"spark.executorEnv.{name}", value)
    for name, value in conf.items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if master.startswith("spark://"):
        _wait_for_executors(spark, master)
    return spark


def _wait_for_executors(spark: Any, master: str, timeout: float = EXECUTOR_TIMEOUT) -> None:
    status = spark.sparkContext._jsc.sc()
    deadline = time.monotonic() + timeout
    while status.getExecutorMemoryStatus().size() < 2:  # the driver counts as one
        if time.monotonic() > deadline:
            spark.stop()
            raise EngineError(
                f"the Spark master {master} gave no executor in {timeout:.0f}s: are its workers "
                "started, with the cores and memory this application asks for?"
            )
        time.sleep(0.5)


# --- texts ----------------------------------------------------------------------------------

_READERS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}


def read_source(spark: Any, settings: Mapping[str, Any]) -> Any:
    """The input DataFrame from var source_path (a file or folder of the suffixes dbt reads)
    or source_table, with every named column checked: :class:`InputError` /
    :class:`ConfigError` naming the var, before anything heavy runs."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    path, table = settings.get("source_path"), settings.get("source_table")
    if bool(path) == bool(table):
        raise ConfigError(
            "set exactly one of var source_path (a file or folder) and source_table (a table "
            f"of the Spark catalog); got source_path={path!r}, source_table={table!r}"
        )
    try:
        frame = spark.table(str(table)) if table else _read_path(spark, str(path))
        columns = frame.columns
    except (PySparkException, Py4JJavaError) as exc:
        what = f"source_table {table!r}" if table else f"source_path {path!r}"
        raise InputError(f"var {what} cannot be read: {str(exc).splitlines()[0]}") from None
    _check_columns(columns, settings)
    return frame


def _check_columns(columns: list[str], settings: Mapping[str, Any]) -> None:
    if not settings.get("text_column"):
        raise ConfigError("var text_column must name a column of the input")
    for var in ("text_column", "id_column", "embedding_column"):
        name = settings.get(var)
        if name and name not in columns:
            raise InputError(
                f"var {var} = {name!r} is not a column of the input; its columns are: "
                f"{', '.join(columns)}. Set it with --vars '{{{var}: <column>}}'"
            )


def source_kind(path: str) -> str:
    """The reader of var source_path (``parquet``, ``csv``, ``tsv``, ``json``); a local path
    that does not exist or has another suffix raises :class:`InputError` (checked before a
    session starts)."""
    lowered = path.lower().rstrip("/")
    kind = next((k for s, k in _READERS.items() if lowered.endswith(s)), None)
    if "://" not in path and not Path(path).exists():
        raise InputError(f"var source_path {path!r}: no such file or folder")
    if kind is None and "://" not in path and Path(path).is_dir():
        kind = "parquet"  # a folder of parquet parts, as Spark writes
    if kind is None:
        raise InputError(
            f"var source_path {path!r} must end in .parquet, .csv, .csv.gz, .tsv, .json, "
            ".jsonl or .ndjson (or be a folder of parquet files)"
        )
    return kind


def _read_path(spark: Any, path: str) -> Any:
    kind = source_kind(path)
    if kind == "parquet":
        return spark.read.parquet(path)
    if kind in ("csv", "tsv"):
        sep = "\t" if kind == "tsv" else ","
        return spark.read.csv(path, header=True, sep=sep, multiLine=True, escape='"')
    return spark.read.json(path)


def staged_texts(source: Any, settings: Mapping[str, Any]) -> Any:
    """stg_texts on Spark: ``text_id, source_row, text, is_embeddable`` (+ ``vector`` with
    var embedding_column). Ids as dbt makes them: the id column as text, else the first 16
    hex digits of ``md5(text)``, ``-2``, ``-3`` for later repeats in input order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    text = F.col(f"`{settings['text_column']}`").cast("string")
    frame = source.withColumn("_source_row", F.monotonically_increasing_id())
    columns = [text.alias("text"), F.col("_source_row").alias("source_row")]
    if settings.get("id_column"):
        columns.append(F.col(f"`{settings['id_column']}`").cast("string").alias("source_id"))
    if settings.get("embedding_column"):
        columns.append(F.col(f"`{settings['embedding_column']}`").cast(EMBEDDING).alias("vector"))
    frame = frame.select(*columns)
    key = F.coalesce(F.col("text"), F.lit(""))
    occurrence = F.row_number().over(Window.partitionBy(key).orderBy("source_row"))
    made = F.concat(
        F.substring(F.md5(key), 1, 16),
        F.when(occurrence > 1, F.concat(F.lit("-"), occurrence.cast("string"))).otherwise(""),
    )
    text_id = F.col("source_id") if settings.get("id_column") else made
    embeddable = F.col("text").isNotNull() & F.col("text").rlike(r"[\p{L}\p{N}]")
    frame = frame.withColumn("text_id", text_id).withColumn("is_embeddable", embeddable)
    keep = ["text_id", "source_row", "text", "is_embeddable"]
    return frame.select(*keep, *(["vector"] if settings.get("embedding_column") else []))


def check_ids(texts: Any, settings: Mapping[str, Any]) -> None:
    """var id_column must be unique and not null (as the dbt path checks): else
    :class:`InputError` with up to three offending ids."""
    if not settings.get("id_column"):
        return
    from pyspark.sql import functions as F

    bad = (
        texts.groupBy("text_id")
        .count()
        .where("count > 1 or text_id is null")
        .orderBy(F.col("text_id").isNotNull(), F.desc("count"), "text_id")
        .limit(3)
        .collect()
    )
    if bad:
        shown = ", ".join(f"{r['text_id'] or 'NULL'} ({r['count']} rows)" for r in bad)
        raise InputError(
            f"var id_column = {settings['id_column']!r} must be unique and not null, but these "
            f"ids are not: {shown}. Fix the input, or leave id_column unset."
        )


# --- embedding ------------------------------------------------------------------------------


def embedding_key(text: Any, cache_model: str) -> Any:
    """The embedding cache key of the DuckDB path (``embedding_key_sql``):
    ``md5(model || chr(0) || text)``."""
    from pyspark.sql import functions as F

    return F.md5(F.concat(F.lit(cache_model + "\0"), text))


def embed_batches(
    model_name: str, backend: str, batch_size: int
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function of the embedding: ``(embedding_key, text)`` batches ->
    ``(embedding_key, embedding_model, embedding)``, by
    :func:`~text_clustering.embed.embed_texts` (the model loaded once per Python worker)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from .embed import embed_texts

        _use_task_threads()
        for batch in batches:
            texts = batch.column("text").to_pylist()
            vectors = embed_texts(
                texts,
                model_name=model_name,
                batch_size=batch_size,
                backend=backend,
                log_every=1 << 30,
            )
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("embedding_key"),
                    pa.array([model_name] * len(texts), pa.string()),
                    _list_array(vectors),
                ],
                names=["embedding_key", "embedding_model", "embedding"],
            )

    return run


def embed_missing(
    spark: Any, texts: Any, settings: Mapping[str, Any], cache: Path, partitions: int | None
) -> Any:
    """The embeddings of the embeddable ``texts``: those the parquet cache ``cache`` lacks
    are embedded on the executors and appended to it; returns ``(text_id, embedding)``."""
    from pyspark.sql import functions as F

    from .embed import OPENAI_PREFIX
    from .steps.embedding import backend_of, cache_model

    model_name = read_str("embedding_model", settings.get("embedding_model"))
    assert model_name is not None
    if model_name.startswith(OPENAI_PREFIX):
        raise ConfigError(
            "var embedding_model: an endpoint (openai:...) is not run from the Spark executors "
            "yet; embed with a local model, or give vectors with var embedding_column"
        )
    batch_size = read_int("embedding_batch_size", settings.get("embedding_batch_size"), minimum=1)
    keyed = texts.where("is_embeddable").select(
        "text_id",
        "text",
        embedding_key(F.col("text"), cache_model(model_name, settings)).alias("embedding_key"),
    )
    missing = keyed.select("embedding_key", "text").dropDuplicates(["embedding_key"])
    if _has_parquet(cache):
        missing = missing.join(spark.read.parquet(str(cache)), "embedding_key", "left_anti")
    if partitions:
        missing = missing.repartition(partitions)
    missing = missing.sortWithinPartitions(F.length("text"))
    spark.sparkContext.setJobDescription("embed")
    started = time.perf_counter()
    embedded = missing.mapInArrow(
        embed_batches(model_name, backend_of(settings), batch_size), CACHE_DDL
    )
    embedded.write.mode("append").parquet(str(cache))
    log(f"spark: embedded the texts the cache lacked in {time.perf_counter() - started:.1f}s")
    spark.sparkContext.setJobDescription(None)
    vectors = spark.read.parquet(str(cache)).select("embedding_key", "embedding")
    return keyed.join(vectors, "embedding_key").select("text_id", "embedding")


def own_vectors(texts: Any) -> Any:
    """``(text_id, embedding)`` from var embedding_column, after a check of every vector (one
    scan): a null, ragged or non-finite one stops the run naming a text_id."""
    from pyspark.sql import functions as F

    rows = texts.where("is_embeddable").select("text_id", F.col("vector").alias("embedding"))
    bad_finite = F.exists("embedding", lambda x: F.isnan(x) | (F.abs(x) == float("inf")))
    summary = rows.select(
        F.min(F.size("embedding")).alias("low"),
        F.max(F.size("embedding")).alias("high"),
        F.min(F.when(F.col("embedding").isNull() | bad_finite, F.col("text_id"))).alias("bad"),
    ).collect()[0]
    if summary["bad"] is not None:
        raise InputError(
            f"column of var embedding_column: a null or non-finite vector at "
            f"text_id={summary['bad']!r}. Every embeddable text needs a finite vector."
        )
    if summary["low"] is not None and summary["low"] != summary["high"]:
        raise InputError(
            "column of var embedding_column has vectors of different lengths "
            f"({summary['low']} to {summary['high']} values). All must share one dimension."
        )
    return rows


# --- the fit (driver) and the placement (executors) ------------------------------------------


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
    from .projection import UMAPProjector
    from .steps.clustering import ClusterSettings, cluster_incremental
    from .steps.projection import FIT, ProjectionSettings, _fit_id
    from .vectors import to_arrow, to_numpy

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
    clustered = cluster_incremental(projected, None, clusters, _reader(sample["text_id"], vectors))
    log(f"spark: fitted {n} texts on the driver in {time.perf_counter() - started:.1f}s")
    rows = projected.append_column("embedding", sample["embedding"])
    for name in ("cluster_label", "assigned_by", "cluster_fit"):
        rows = rows.append_column(name, clustered[name])
    return SavedFit(rows, asdict(projection), asdict(clusters), key)


def _reader(ids: Any, vectors: np.ndarray) -> Callable[[Any], np.ndarray]:
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
        from .projection import UMAPProjector
        from .steps.clustering import ClusterSettings, restore_clusterer
        from .steps.projection import ProjectionSettings
        from .vectors import to_numpy

        _RESTORED.clear()
        vectors = to_numpy(fit.rows, "embedding")
        points = to_numpy(fit.rows, "projection")
        params = ProjectionSettings(**fit.projection).umap_params()
        projector = UMAPProjector.restore(vectors, points, **params)
        projector.index()  # the search index, built once here
        clusterer = restore_clusterer(
            fit.rows, fit.rows, ClusterSettings(**fit.clusters), _reader(fit.ids(), vectors)
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
    from .steps.projection import FIT, TRANSFORM
    from .vectors import to_numpy

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
            _list_array(points),
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
        _use_task_threads()
        saved = shared.value
        for batch in batches:
            yield place_batch(saved, batch)

    return embedded.mapInArrow(run, PLACED_DDL)


def _use_task_threads() -> None:
    """Threads of this task: spark.task.cpus (1 by default), set once per Python worker."""
    from pyspark import TaskContext

    from . import runtime

    context = TaskContext.get()
    cpus = context.cpus() if context is not None else 1
    if runtime.threads_in_use() != cpus:
        runtime.use_threads(cpus)


def _list_array(vectors: np.ndarray) -> pa.Array:
    """An ``(n, d)`` array as an Arrow ``list<float>`` column (Spark's ``array<float>``)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    d = vectors.shape[1] if vectors.ndim == 2 else 0
    offsets = pa.array(np.arange(vectors.shape[0] + 1, dtype=np.int32) * d, pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32()))


def _has_parquet(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.parquet"))


# --- labels (driver, fitted texts only) -------------------------------------------------------

REPRESENTATIVES_SQL = """
with

facet_centres as (

    select
        cluster_label,
        facet,
        text_id,
        facet_distance,
        row_number() over (
            partition by cluster_label, facet
            order by facet_distance, text_id
        ) as facet_rank
    from facets

),

ranked as (

    select
        cluster_label,
        text_id,
        facet,
        facet_distance,
        row_number() over (
            partition by cluster_label order by facet
        ) as representative_rank
    from facet_centres
    where facet_rank = 1

),

final as (

    select
        ranked.cluster_label,
        ranked.representative_rank,
        ranked.text_id,
        fit_texts.text,
        ranked.facet,
        ranked.facet_distance
    from ranked
    inner join fit_texts on ranked.text_id = fit_texts.text_id
    where ranked.representative_rank <= {samples}

)

select * from final
"""

TOPIC_REPRESENTATIVES_SQL = """
with

cluster_sizes as (

    select
        topic_id as cluster_label,
        n_fit_texts
    from tree
    where level = 0

),

ranked as (

    select
        cluster_topics.level,
        cluster_topics.topic_id,
        representatives.cluster_label,
        representatives.text_id,
        representatives.text,
        row_number() over (
            partition by cluster_topics.level, cluster_topics.topic_id
            order by
                representatives.representative_rank asc,
                cluster_sizes.n_fit_texts desc,
                representatives.cluster_label asc
        ) as topic_rank
    from representatives
    inner join cluster_topics
        on representatives.cluster_label = cluster_topics.cluster_label
    inner join cluster_sizes
        on representatives.cluster_label = cluster_sizes.cluster_label
    where cluster_topics.level >= 1 and cluster_topics.topic_id <> -1

),

final as (

    select
        concat(level, ':', topic_id, ':', topic_rank) as representative_key,
        level,
        topic_id,
        topic_rank as representative_rank,
        text_id,
        text,
        cluster_label
    from ranked
    where topic_rank <= {samples}

)

select * from final
"""


@dataclass
class Labels:
    """The small tables the marts join: every cluster's labels (``int_clusters_labelled``'s
    columns the marts read), each cluster's topic per level, the tree and the topics' names,
    and the LLM replies added to the cache in this run."""

    labelled: pa.Table
    cluster_topics: pa.Table
    tree: pa.Table
    topics: pa.Table
    new_replies: pa.Table
    tables: dict[str, pa.Table] = field(default_factory=dict)


def label_fit(
    spark: Any, fit: SavedFit, fit_texts: pa.Table, settings: Mapping[str, Any], cache: Path
) -> Labels:
    """Facets, representatives, topic tree, keywords, prompts, LLM replies (cached in the
    parquet folder ``cache``) and names of the fitted texts' clusters and topics, by the
    dbt models' step functions."""
    import duckdb
    import pyarrow.parquet as pq

    from .keywords import KeywordModel
    from .redact import check_classes
    from .steps.labelling import cluster_prompts, facet_table
    from .steps.llm import ask_llm
    from .steps.naming import name_clusters, name_topics
    from .steps.topics import HierarchySettings, build_tree, cluster_paths, keyword_table
    from .vectors import to_numpy

    k = read_int("samples_per_cluster", settings.get("samples_per_cluster"), minimum=1)
    rows = fit.rows
    labels = rows["cluster_label"].to_numpy(zero_copy_only=False)
    own = pc.is_in(rows["assigned_by"], value_set=pa.array(list(ALGORITHMS))).to_numpy(
        zero_copy_only=False
    )
    members = rows.filter(pa.array((labels != NOISE) & own))
    facets = facet_table(members.select(["text_id", "cluster_label", "projection"]), k)
    # representatives: the SQL of int_cluster_representatives, windows in Spark
    texts = fit_texts.select(["text_id", "text"])
    spark.createDataFrame(_spark_ready(facets)).createOrReplaceTempView("facets")
    spark.createDataFrame(_spark_ready(texts)).createOrReplaceTempView("fit_texts")
    representatives = spark.sql(REPRESENTATIVES_SQL.format(samples=k)).toArrow()
    tree = build_tree(
        rows.select(["text_id", "cluster_label"]),
        _reader(fit.ids(), to_numpy(rows, "embedding")),
        HierarchySettings.from_config(settings),
    )
    paths = cluster_paths(tree.to_pylist())
    cluster_topics = pa.Table.from_pylist(
        [
            {"cluster_label": c, "level": level, "topic_id": t}
            for level, topic_of in enumerate(paths)
            for c, t in sorted(topic_of.items())
        ],
        schema=pa.schema(
            [("cluster_label", pa.int32()), ("level", pa.int32()), ("topic_id", pa.int32())]
        ),
    )
    default_label = read_str("default_label", settings.get("default_label"))
    assert default_label is not None
    model = KeywordModel(n=read_int("n", settings.get("n"), minimum=1), default_label=default_label)
    docs = rows.select(["text_id", "cluster_label"]).join(texts, "text_id").sort_by("text_id")
    topic_keywords = keyword_table(docs, tree, model, check_classes(settings.get("redact")))
    keywords = topic_keywords.filter(pc.equal(topic_keywords["level"], 0))
    keywords = keywords.select(["topic_id", "top_keywords", "keyword_labels"]).rename_columns(
        ["cluster_label", "top_keywords", "keyword_labels"]
    )
    spark.createDataFrame(_spark_ready(representatives)).createOrReplaceTempView("representatives")
    spark.createDataFrame(_spark_ready(cluster_topics)).createOrReplaceTempView("cluster_topics")
    spark.createDataFrame(_spark_ready(tree)).createOrReplaceTempView("tree")
    topic_representatives = spark.sql(TOPIC_REPRESENTATIVES_SQL.format(samples=k)).toArrow()

    con = duckdb.connect()
    rel = con.from_arrow
    prompts = cluster_prompts(con, None, rel(representatives), settings)
    cached = f"read_parquet('{cache}/*.parquet')" if _has_parquet(cache) else None
    new = ask_llm(
        con,
        cached,
        rel(prompts),
        rel(keywords),
        rel(representatives),
        rel(tree),
        rel(topic_keywords),
        rel(topic_representatives),
        settings,
    )
    if new.num_rows:
        cache.mkdir(parents=True, exist_ok=True)
        pq.write_table(new, cache / f"replies-{time.time_ns()}.parquet")
    # every reply: the cache as it now is (the rows just added included), one per request
    every = _latest_replies(
        con.sql(f"select * from read_parquet('{cache}/*.parquet')") if _has_parquet(cache) else new
    )
    named = name_clusters(rel(keywords), rel(prompts), rel(every), rel(representatives), settings)
    topics = name_topics(
        rel(prompts),
        rel(keywords),
        rel(representatives),
        rel(tree),
        rel(topic_keywords),
        rel(topic_representatives),
        rel(every),
        settings,
    )
    for name, table in (("named", named), ("keywords", keywords), ("prompts", prompts)):
        con.register(name, table)
    labelled = read_arrow(
        con.sql(
            """
        select
            named.cluster_label,
            named.summary_labels,
            array_to_string(named.summary_labels, '; ') as summary_label,
            named.model_name,
            named.label_status,
            named.label_error,
            named.distinct_by,
            keywords.top_keywords,
            coalesce(prompts.representative_ids, []) as representative_ids
        from named
        inner join keywords on named.cluster_label = keywords.cluster_label
        left join prompts on named.cluster_label = prompts.cluster_label
        """
        )
    )
    tables = {"prompts": prompts, "representatives": representatives, "facets": facets}
    return Labels(labelled, cluster_topics, tree, topics, new, tables)


def _latest_replies(table: Any) -> pa.Table:
    """One reply per request_hash, the latest answered (the dbt model's merge on the key)."""
    table = read_arrow(table)
    if not table.num_rows:
        return table
    order = table.sort_by([("request_hash", "ascending"), ("answered_at", "descending")])
    first = np.ones(order.num_rows, dtype=bool)
    hashes = order["request_hash"].to_numpy(zero_copy_only=False)
    first[1:] = hashes[1:] != hashes[:-1]
    return order.filter(pa.array(first))


def _spark_ready(table: pa.Table) -> pa.Table:
    """``table`` with fixed-size lists as lists (Spark's ``array``) and maps dropped."""
    fields = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if isinstance(kind, pa.FixedSizeListType):
            fields.append((name, column.cast(pa.list_(kind.value_type))))
        elif not isinstance(kind, pa.MapType):
            fields.append((name, column))
    return pa.table(dict(fields))


# --- marts ----------------------------------------------------------------------------------

FCT_TEXT_CLUSTERS_SQL = """
with

level_labels as (

    select
        0 as level,
        cluster_label as topic_id,
        summary_label
    from labels
    union all
    select
        level,
        topic_id,
        array_join(summary_labels, '; ') as summary_label
    from topics

),

paths as (

    select
        cluster_topics.cluster_label,
        transform(
            sort_array(
                collect_list(struct(cluster_topics.level, level_labels.summary_label)), false
            ),
            x -> x.summary_label
        ) as topic_path,
        max(case when tree.is_headline then level_labels.summary_label end) as topic_label
    from cluster_topics
    inner join level_labels
        on
            cluster_topics.level = level_labels.level
            and cluster_topics.topic_id = level_labels.topic_id
    inner join tree
        on
            cluster_topics.level = tree.level
            and cluster_topics.topic_id = tree.topic_id
    group by cluster_topics.cluster_label

),

assigned as (

    select
        texts.text_id,
        texts.text,
        placed.projection,
        coalesce(placed.cluster_label, -1) as cluster_label
    from texts
    left join placed on texts.text_id = placed.text_id

),

final as (

    select
        assigned.text_id,
        assigned.text,
        assigned.projection,
        assigned.cluster_label,
        labels.summary_label,
        labels.summary_labels,
        labels.model_name,
        paths.topic_label,
        paths.topic_path,
        -- the overrides seed is the dbt path's: nothing is moved, merged or excluded here
        assigned.cluster_label as fitted_cluster_label,
        false as is_excluded
    from assigned
    inner join labels on assigned.cluster_label = labels.cluster_label
    left join paths on assigned.cluster_label = paths.cluster_label

)

select * from final
"""

DIM_CLUSTERS_SQL = """
with

sizes as (

    select
        cluster_label,
        count(*) as n_texts,
        count(*) / sum(count(*)) over () as share,
        array(
            cast(avg(projection[0]) as float), cast(avg(projection[1]) as float)
        ) as centre
    from text_clusters
    group by cluster_label

),

final as (

    select
        labels.cluster_label,
        labels.cluster_label = -1 as is_noise,
        coalesce(sizes.n_texts, 0) as n_texts,
        coalesce(sizes.share, 0.0) as share,
        sizes.centre,
        labels.summary_label,
        labels.summary_labels,
        labels.model_name,
        labels.label_status,
        labels.label_error,
        labels.distinct_by,
        labels.top_keywords,
        labels.representative_ids,
        cast(null as int) as merged_into,
        false as is_excluded
    from labels
    left join sizes on labels.cluster_label = sizes.cluster_label

)

select * from final
"""


def write_marts(
    spark: Any, texts: Any, placed: Any, labels: Labels, output: Path
) -> dict[str, str]:
    """``fct_text_clusters`` and ``dim_clusters`` as parquet folders under ``output``, by the
    Spark twins of their dbt SQL; returns their paths. The overrides seed
    (seeds/cluster_overrides.csv) is not read here: the override columns say nothing was
    moved, merged or excluded."""
    spark.createDataFrame(_spark_ready(labels.labelled)).createOrReplaceTempView("labels")
    spark.createDataFrame(_spark_ready(labels.cluster_topics)).createOrReplaceTempView(
        "cluster_topics"
    )
    spark.createDataFrame(_spark_ready(labels.tree)).createOrReplaceTempView("tree")
    topics = labels.topics.select(["level", "topic_id", "summary_labels"])
    spark.createDataFrame(
        _spark_ready(topics), "level int, topic_id int, summary_labels array<string>"
    ).createOrReplaceTempView("topics")
    texts.select("text_id", "text").createOrReplaceTempView("texts")
    placed.createOrReplaceTempView("placed")
    paths = {name: str(output / name) for name in ("fct_text_clusters", "dim_clusters")}
    spark.sparkContext.setJobDescription("fct_text_clusters")
    spark.sql(FCT_TEXT_CLUSTERS_SQL).write.mode("overwrite").parquet(paths["fct_text_clusters"])
    spark.read.parquet(paths["fct_text_clusters"]).createOrReplaceTempView("text_clusters")
    spark.sparkContext.setJobDescription("dim_clusters")
    spark.sql(DIM_CLUSTERS_SQL).coalesce(1).write.mode("overwrite").parquet(paths["dim_clusters"])
    spark.sparkContext.setJobDescription(None)
    return paths


# --- the run ----------------------------------------------------------------------------------


def run(
    spark: Any,
    settings: Mapping[str, Any],
    output: Path,
    *,
    cache: Path | None = None,
    partitions: int | None = None,
    source: Any = None,
) -> dict[str, Any]:
    """The whole Spark path on ``spark``: marts under ``output`` (parquet), the embedding
    and LLM caches under ``cache`` (default ``output/_cache``). The input is ``source`` (a
    DataFrame, e.g. a dbt model's ``dbt.source(...)``) or else vars source_path /
    source_table. Returns what was done: counts, seconds per stage, and per executor its
    tasks and peak memory (Spark's status API), also written to ``output/_run.json``."""
    from pyspark.sql import functions as F

    from .steps.projection import ProjectionSettings

    settings = settings_from({k: v for k, v in settings.items() if k in DEFAULT_VARS})
    projection = ProjectionSettings.from_config(settings)  # every setting checked up front
    from .steps.clustering import ClusterSettings

    ClusterSettings.from_config(settings).clusterer()._validate()
    output.mkdir(parents=True, exist_ok=True)
    cache = cache or output / "_cache"
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    if source is None:
        source = read_source(spark, settings)
    else:
        settings = {**settings, "source_path": None, "source_table": "(given)"}
        _check_columns(source.columns, settings)
    texts = staged_texts(source, settings)
    if partitions:
        texts = texts.repartition(partitions)
    texts = texts.persist()
    n_texts = texts.count()
    check_ids(texts, settings)
    lap("read")
    if settings.get("embedding_column"):
        embedded = own_vectors(texts)
    else:
        embedded = embed_missing(spark, texts, settings, cache / "embeddings", partitions)
    lap("embed")
    spark.sparkContext.setJobDescription("fit sample")
    sample = (
        embedded.join(texts.select("text_id", "text"), "text_id")
        .orderBy(F.md5("text_id"), "text_id")
        .limit(projection.max_fit_rows)
        .toArrow()
    )
    if sample.num_rows == 0:
        raise InputError(
            "no embeddable text in the input: every text is null, empty or has no word"
        )
    spark.sparkContext.setJobDescription(None)
    fit = fit_sample(sample.select(["text_id", "embedding"]), settings)
    lap("fit")
    spark.sparkContext.setJobDescription("place")
    placed_path = output / "_work" / "texts_placed"
    place_texts(spark, embedded, fit).write.mode("overwrite").parquet(str(placed_path))
    spark.sparkContext.setJobDescription(None)
    placed = spark.read.parquet(str(placed_path))
    lap("place")
    labels = label_fit(
        spark, fit, sample.select(["text_id", "text"]), settings, cache / "llm_replies"
    )
    lap("label")
    paths = write_marts(spark, texts, placed, labels, output)
    lap("marts")
    texts.unpersist()
    summary = {
        "master": spark.sparkContext.master,
        "application_id": spark.sparkContext.applicationId,
        "spark_version": spark.version,
        "n_texts": n_texts,
        "n_fit": fit.rows.num_rows,
        "n_clusters": int(pc.sum(pc.not_equal(labels.labelled["cluster_label"], NOISE)).as_py()),
        "llm_replies_added": labels.new_replies.num_rows,
        "seconds": seconds,
        "outputs": paths,
    }
    try:  # Spark's status API: what ran where (not reachable on every platform)
        summary.update(executors=executor_status(spark), jobs=job_status(spark))
    except OSError as exc:
        log(f"spark: the status API of {spark.sparkContext.uiWebUrl} did not answer: {exc}")
        summary.update(executors=[], jobs=[])
    (output / "_run.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _status(spark: Any, path: str, attempts: int = 3) -> Any:
    """A document of the application's REST status API (``/api/v1/applications/<id>/...``);
    the UI answers slowly on a loaded machine, so it is asked up to ``attempts`` times."""
    url = spark.sparkContext.uiWebUrl
    if not url:
        return []
    address = f"{url}/api/v1/applications/{spark.sparkContext.applicationId}/{path}"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(address, timeout=60) as reply:
                return json.loads(reply.read())
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(2)
    return []  # pragma: no cover - the loop returns or raises


def executor_status(spark: Any) -> list[dict[str, Any]]:
    """Per executor (the driver included, id ``driver``): host, cores, tasks run, task
    seconds and peak memory (JVM heap, JVM and Python RSS, bytes) from the status API."""
    rows = []
    for e in _status(spark, "allexecutors"):
        peak = e.get("peakMemoryMetrics") or {}
        rows.append(
            {
                "id": e["id"],
                "host_port": e.get("hostPort"),
                "cores": e.get("totalCores"),
                "total_tasks": e.get("totalTasks"),
                "task_seconds": round(e.get("totalDuration", 0) / 1000, 2),
                "peak_jvm_heap": peak.get("JVMHeapMemory"),
                "peak_jvm_rss": peak.get("ProcessTreeJVMRSSMemory"),
                "peak_python_rss": peak.get("ProcessTreePythonRSSMemory"),
            }
        )
    return rows


def job_status(spark: Any) -> list[dict[str, Any]]:
    """Per job description (embed, fit sample, place, the marts): its jobs' stages' tasks,
    task seconds (executor run time) and rows written, from the status API."""
    stages = {s["stageId"]: s for s in _status(spark, "stages?status=complete")}
    out: dict[str, dict[str, Any]] = {}
    for job in _status(spark, "jobs"):
        described = job.get("description") or ""
        if not described or job.get("status") != "SUCCEEDED":
            continue
        row = out.setdefault(
            described, {"description": described, "tasks": 0, "task_seconds": 0.0, "output_rows": 0}
        )
        for stage in (stages[i] for i in job.get("stageIds", []) if i in stages):
            row["tasks"] += stage.get("numCompleteTasks", 0)
            row["task_seconds"] = round(
                row["task_seconds"] + stage.get("executorRunTime", 0) / 1000, 2
            )
            row["output_rows"] += stage.get("outputRecords", 0)
    return list(out.values())


# --- a standalone cluster on this machine (tests, benchmarks) ------------------------------------


@dataclass
class LocalCluster:
    """A standalone master and its workers, each a process of its own on 127.0.0.1."""

    url: str
    web_ui: str
    processes: list[subprocess.Popen[bytes]]
    logs: Path

    def status(self) -> dict[str, Any]:
        """The master's JSON status (its workers, their state, cores and memory)."""
        with urllib.request.urlopen(f"{self.web_ui}/json/", timeout=5) as reply:
            return dict(json.loads(reply.read()))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spark_class() -> Path:
    """``bin/spark-class`` of the installed pyspark (its own Spark distribution)."""
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@contextmanager
def local_cluster(
    workers: int = 2, *, cores: int = 1, memory: str = "2g", timeout: float = 90.0
) -> Iterator[LocalCluster]:
    """Start a standalone Spark master and ``workers`` workers (``cores`` and ``memory``
    each) as separate processes bound to 127.0.0.1 on free ports; stop them all on exit,
    whatever happened (their logs are removed unless something failed). Needs ``java``
    (OpenJDK 17)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise EngineError("no Java runtime: apt-get install openjdk-17-jre-headless")
    logs = Path(tempfile.mkdtemp(prefix="spark-local-"))
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    env.setdefault("SPARK_HOME", str(spark_class().parents[1]))
    port, web = _free_port(), _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    finished = False

    def start(name: str, *args: str) -> None:
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        processes.append(
            subprocess.Popen(
                [str(spark_class()), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=logs,
            )
        )

    cluster = LocalCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web}", processes, logs)
    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web)),
        )
        for i in range(workers):
            start(
                f"worker-{i}",
                "org.apache.spark.deploy.worker.Worker",
                cluster.url,
                *("--host", "127.0.0.1", "--cores", str(cores), "--memory", memory),
                *("--webui-port", str(_free_port()), "--work-dir", str(logs / f"work-{i}")),
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                alive = [w for w in cluster.status()["workers"] if w["state"] == "ALIVE"]
                if len(alive) >= workers:
                    break
            except OSError:
                pass
            dead = [p for p in processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = (logs / "master.log").read_text(errors="replace")[-2000:]
                raise EngineError(f"the local Spark cluster did not start ({logs}): {tail}")
            time.sleep(0.5)
        log(f"spark: standalone cluster {cluster.url}, {workers} worker(s), UI {cluster.web_ui}")
        yield cluster
        finished = True
    finally:
        for process in reversed(processes):
            _stop(process)
    if finished:  # the logs are kept only when something went wrong
        shutil.rmtree(logs, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a process started by :func:`local_cluster` (its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=grace)
