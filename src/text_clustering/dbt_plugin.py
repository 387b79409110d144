"""A dbt-duckdb plugin (profiles.yml ``plugins``): a clear message when the database is locked.

DuckDB lets one process write a database file. When another process holds it (a notebook, a
BI tool, a second dbt), dbt-duckdb fails deep in its connection code with a stack trace. This
plugin tries the file just before dbt-duckdb opens it and, on a lock conflict, stops with one
message that says which process holds it and what to do.
"""

from __future__ import annotations

from typing import Any

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt_common.exceptions import DbtRuntimeError


class Plugin(BasePlugin):
    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        path = str(getattr(creds, "path", "") or "")
        if not path or path == ":memory:" or path.startswith("md:"):
            return
        try:
            duckdb.connect(path, config=dict(config)).close()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise DbtRuntimeError(
                f"The DuckDB database {path} is open in another process, and DuckDB allows "
                f"one writer at a time ({exc}). Close that process (a notebook, BI tool or "
                "second dbt run) and build again, or set DBT_DUCKDB_PATH to another file."
            ) from None
