"""What a build leaves in the warehouse, where BI users see it: the models' relations only
(none of the `<model>__dbt_tmp<timestamp>` tables dbt-duckdb writes for incremental Python
models), each column of them declared and described in the models' yml."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt_helpers import ok, query, run_dbt

TOPICS = [
    "chess engine that plays chess against you with an opening book",
    "mail server that delivers email over smtp and imap to mailboxes",
    "truetype font family with serif glyphs for latin and greek scripts",
]
INCREMENTAL = {"int_embedding_cache", "int_texts_embedded", "int_llm_replies"}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """A database built twice from the same input: the second build runs the incremental
    models as increments. Returns (database, manifest, output of the second build)."""
    work = tmp_path_factory.mktemp("warehouse")
    source = work / "t.parquet"
    texts = [f"{topic}, variant {i}" for topic in TOPICS for i in range(12)]
    pq.write_table(pa.table({"text": texts}), source)
    database = work / "rebuilt.duckdb"
    variables = {"source_path": str(source), "savefig": False, "min_samples": 3}
    ok(run_dbt(work, database, "build", vars=variables))
    result = ok(run_dbt(work, database, "build", vars=variables))
    manifest = json.loads((work / "target" / "manifest.json").read_text())
    return database, manifest, result.stdout + result.stderr


def relations(database) -> set[str]:
    return {
        name
        for (name,) in query(
            database,
            # main: the models and seeds (the warn tests' stored failures are in their own schema)
            "select table_name from duckdb_tables() where schema_name = 'main' union all "
            "select view_name from duckdb_views() where not internal and schema_name = 'main'",
        )
    }


def test_an_incremental_rebuild_leaves_no_dbt_tmp_relations(rebuilt):
    database, _, output = rebuilt
    assert "all texts already in the cache" in output  # increments, which write __dbt_tmp tables
    assert [name for name in relations(database) if "__dbt_tmp" in name] == []
    assert relations(database) >= INCREMENTAL


def test_every_relation_is_a_model_with_every_column_described(rebuilt):
    database, manifest, _ = rebuilt
    models = {
        n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")
    }
    assert relations(database) == set(models)
    undescribed = [
        f"{table}.{column}"
        for table, column in query(
            database,
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'main'",
        )
        if not models[table]["columns"].get(column, {}).get("description", "").strip()
    ]
    assert undescribed == []
