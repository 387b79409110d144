"""A build leaves in the warehouse only the models' own relations: none of the
`<model>__dbt_tmp<timestamp>` tables dbt-duckdb writes for incremental Python models."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from dbt_helpers import ok, query, run_dbt

TOPICS = [
    "chess engine that plays chess against you with an opening book",
    "mail server that delivers email over smtp and imap to mailboxes",
    "truetype font family with serif glyphs for latin and greek scripts",
]
INCREMENTAL = {"int_embedding_cache", "int_texts_embedded", "int_llm_responses", "int_llm_relabels"}


def test_an_incremental_rebuild_leaves_no_dbt_tmp_relations(tmp_path):
    source = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"text": [f"{t}, variant {i}" for t in TOPICS for i in range(12)]}), source
    )
    database = tmp_path / "rebuilt.duckdb"
    variables = {"source_path": str(source), "savefig": False, "min_samples": 3}
    ok(run_dbt(tmp_path, database, "build", vars=variables))
    rebuilt = ok(run_dbt(tmp_path, database, "build", vars=variables))

    # the second build ran the incremental models as increments, which write __dbt_tmp tables
    assert "all texts already in the cache" in rebuilt.stdout + rebuilt.stderr
    relations = query(
        database,
        "select table_name from duckdb_tables() union all "
        "select view_name from duckdb_views() where not internal",
    )
    assert [name for (name,) in relations if "__dbt_tmp" in name] == []
    assert {name for (name,) in relations} >= INCREMENTAL
