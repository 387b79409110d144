"""The texts on Spark: the input read and checked (:func:`read_source`), ``stg_texts``' ids and
``is_embeddable`` (:func:`staged_texts`), the id column checked (:func:`check_ids`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError

EMBEDDING = "array<float>"  # vectors as Spark holds them


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
    check_columns(columns, settings)
    return frame


def check_columns(columns: list[str], settings: Mapping[str, Any]) -> None:
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
