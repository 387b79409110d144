"""The embedding on Spark: the texts the parquet cache lacks, embedded on the executors by
:func:`~text_clustering.embed.embed_texts` (:func:`embed_missing`), or the input's own
vectors, checked (:func:`own_vectors`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..config import read_int, read_str
from ..errors import ConfigError, InputError
from ..log import log
from .arrow import has_parquet, list_array, use_task_threads

CACHE_DDL = "embedding_key string, embedding_model string, embedding array<float>"


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
        from ..embed import embed_texts

        use_task_threads()
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
                    list_array(vectors),
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

    from ..embed import OPENAI_PREFIX
    from ..steps.embedding import backend_of, cache_model

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
    if has_parquet(cache):
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
