"""Parquet copies of the marts, for readers that cannot open the DuckDB file while dbt holds it."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .log import log

EXPORTS_SCHEMA = pa.schema(
    [("model_name", pa.string()), ("export_path", pa.string()), ("n_rows", pa.int64())]
)


def export_parquet(tables: dict[str, pa.Table], directory: str | None) -> pa.Table:
    """Write each table to ``<directory>/<name>.parquet`` (zstd) and list what was written.

    Each file is written under a temporary name and renamed, so a reader never sees half a
    file. ``directory=None`` writes nothing and returns no rows.
    """
    rows = []
    if directory:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            path = out / f"{name}.parquet"
            partial = path.with_suffix(".parquet.partial")
            pq.write_table(table, partial, compression="zstd")
            os.replace(partial, path)
            rows.append(
                {"model_name": name, "export_path": str(path.resolve()), "n_rows": table.num_rows}
            )
        log(f"exported {', '.join(tables)} as parquet to {out.resolve()}")
    return pa.Table.from_pylist(rows, schema=EXPORTS_SCHEMA)
