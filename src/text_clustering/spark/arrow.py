"""What the Spark stages share: Arrow columns as Spark arrays (:func:`list_array`), small
Arrow tables as Spark SQL views (:func:`temp_view`), a task's threads
(:func:`use_task_threads`), a parquet folder's presence (:func:`has_parquet`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa


def use_task_threads() -> None:
    """Threads of this task: spark.task.cpus (1 by default), set once per Python worker."""
    from pyspark import TaskContext

    from .. import runtime

    context = TaskContext.get()
    cpus = context.cpus() if context is not None else 1
    if runtime.threads_in_use() != cpus:
        runtime.use_threads(cpus)


def list_array(vectors: np.ndarray) -> pa.Array:
    """An ``(n, d)`` array as an Arrow ``list<float>`` column (Spark's ``array<float>``)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    d = vectors.shape[1] if vectors.ndim == 2 else 0
    offsets = pa.array(np.arange(vectors.shape[0] + 1, dtype=np.int32) * d, pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32()))


def has_parquet(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.parquet"))


def temp_view(spark: Any, name: str, table: pa.Table, schema: str | None = None) -> None:
    """The Arrow ``table`` as the Spark SQL temporary view ``name`` (``schema``: a DDL string
    when Spark cannot infer the types, e.g. of an empty list column)."""
    spark.createDataFrame(_spark_ready(table), schema).createOrReplaceTempView(name)


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
