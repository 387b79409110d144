"""Private data never leaves: texts carrying a sentinel value of every class of
text_clustering.redact are built with the local fake LLM server; no sentinel reaches the
server, dbt's target/ and logs, the build's output or any table but the copies of the input
texts. With var redact: [] they do reach the server (so the check can fail)."""

from __future__ import annotations

import json

import duckdb
from dbt_helpers import ok, query, run_dbt
from fake_openai import serve
from sentinels import SENTINELS, secret_parts
from test_bad_input import topic_texts

from text_clustering.redact import PLACEHOLDERS

VALUES = [(kind, value) for kind, values in SENTINELS.items() for value in values]
# The columns that hold an input text as given (the user's own data, in their warehouse),
# and the files that copy such tables (the parquet exports of the marts).
TEXT_COLUMNS = {"text"}
TEXT_FILES = {"fct_text_clusters.parquet"}


def private_texts() -> list[dict[str, str]]:
    """36 texts of three topics, each carrying one sentinel value (all of them, in turn)."""
    return [
        {"id": f"t{i}", "text": f"{text}. Contact: {VALUES[i % len(VALUES)][1]} today"}
        for i, text in enumerate(topic_texts())
    ]


def leaked(haystack: str) -> list[str]:
    return [kind for kind, value in VALUES if any(p in haystack for p in secret_parts(kind, value))]


def table_values(database) -> str:
    """Every value of every table and view but the input-text columns, as one string."""
    out = []
    with duckdb.connect(str(database), read_only=True) as con:
        columns = con.sql(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'main'"
        ).fetchall()
        for table, column in columns:
            if column in TEXT_COLUMNS:
                continue
            rows = con.sql(f'select distinct "{column}"::varchar from "{table}"').fetchall()
            out += [str(r[0]) for r in rows]
    return "\n".join(out)


def test_no_private_value_reaches_the_llm_the_logs_or_the_tables(tmp_path):
    source = tmp_path / "tickets.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in private_texts()))
    database = tmp_path / "private.duckdb"
    variables = {"source_path": str(source), "id_column": "id", "min_samples": 3}
    with serve() as (url, state):
        result = ok(
            run_dbt(
                tmp_path,
                database,
                "build",
                vars={**variables, "savefig": True, "figure_path": str(tmp_path / "f.png")},
                env={"OPENAI_BASE_URL": url},
            )
        )
        sent = json.dumps(state.requests)
        assert state.chat_calls > 0
    assert leaked(sent) == []
    assert any(p in sent for p in PLACEHOLDERS.values())
    assert leaked(result.stdout + result.stderr) == []
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".duckdb"]
    files = [p for p in files if p.name != source.name and p.name not in TEXT_FILES]
    assert {"text_clusters.html", "report.md"} <= {p.name for p in files}  # texts, redacted
    assert files and not [p for p in files if leaked(p.read_bytes().decode("utf8", "replace"))]
    assert leaked(table_values(database)) == []
    # the audit counts what was redacted, per class (never the values): every class whose
    # placeholder was sent, and only those (which texts represent a cluster, and so which
    # classes reach a prompt, depends on the layout: most of them here)
    counts = query(
        database,
        "select k, sum(v) from (select unnest(map_keys(redactions)) as k, "
        "unnest(map_values(redactions)) as v from int_llm_replies) group by k",
    )
    sent_classes = {k for k, placeholder in PLACEHOLDERS.items() if placeholder in sent}
    assert {k for k, _ in counts} == sent_classes, (counts, sent_classes)
    assert len(sent_classes) >= len(SENTINELS) - 2 and all(v > 0 for _, v in counts)
    assert query(database, "select count(*) from fct_text_clusters") == [(36,)]

    # the control: with redaction off, the same prompts carry the values to the endpoint
    with serve() as (url, state):
        ok(
            run_dbt(
                tmp_path,
                database,
                "build",
                "--select",
                "int_topic_keywords+",
                "int_cluster_prompts+",
                vars={**variables, "savefig": False, "redact": []},
                env={"OPENAI_BASE_URL": url},
            )
        )
        sent = json.dumps(state.requests)
    assert set(leaked(sent)) == sent_classes  # each class the redacted prompts carried
