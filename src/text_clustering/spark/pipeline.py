"""The whole Spark path (:func:`run`): read, embed, fit, place, label, write the marts."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from ..clustering import NOISE
from ..errors import InputError
from ..log import log
from .embedding import embed_missing, own_vectors
from .labels import label_fit
from .marts import write_marts
from .placement import fit_sample, place_texts
from .session import DEFAULT_VARS, executor_status, job_status, settings_from
from .texts import check_columns, check_ids, read_source, staged_texts


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

    from ..steps.projection import ProjectionSettings

    settings = settings_from({k: v for k, v in settings.items() if k in DEFAULT_VARS})
    projection = ProjectionSettings.from_config(settings)  # every setting checked up front
    from ..steps.clustering import ClusterSettings

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
        check_columns(source.columns, settings)
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
