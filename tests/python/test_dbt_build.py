"""End to end: `dbt build` on temporary DuckDB files, as a user runs it.

One module-scoped build from a parquet file (with texts that have no words and a repeated
text), a second identical build to check determinism, then builds from a table already in
the database (with its own id, text column and precomputed vectors), one of them labelled by
the local OpenAI-compatible server with a sentinel API key that must not leak anywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import REPO
from dbt_helpers import SENTINEL_KEY, mart, ok, query, run_dbt
from fake_openai import MODEL_REPORTED, serve

from text_clustering.collisions import label_key

SECTIONS = ["fonts", "games", "mail", "database", "hamradio"]
NO_WORDS = [None, "", "   ", "?!… 🙂"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """~330 real Debian descriptions of 5 sections, plus texts without words and a repeat."""
    demo = pq.read_table(REPO / "data" / "debian_packages.parquet")
    picked = demo.filter(pc.is_in(demo["section"], pa.array(SECTIONS)))
    picked = picked.filter(
        pc.equal(pc.bit_wise_and(pc.cast(pc.utf8_length(picked["package"]), "int64"), 1), 0)
    )
    extra = pa.table(
        {
            "package": [f"no-words-{i}" for i in range(len(NO_WORDS))] + ["repeat"],
            "section": ["none"] * len(NO_WORDS) + ["games"],
            "synopsis": [""] * (len(NO_WORDS) + 1),
            "text": [*NO_WORDS, picked["text"][0].as_py()],
        }
    )
    table = pa.concat_tables([picked, extra.cast(picked.schema)])
    path = tmp_path_factory.mktemp("corpus") / "texts.parquet"
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def file_build(corpus, tmp_path_factory):
    work = tmp_path_factory.mktemp("file_build")
    database = work / "build.duckdb"
    figure = work / "figure.png"
    result = ok(
        run_dbt(
            work,
            database,
            "build",
            vars={
                "source_path": str(corpus),
                "figure_path": str(figure),
                "reference_label_column": "section",
            },
        )
    )
    return work, database, figure, result


def test_file_build_keeps_every_text_and_labels_it(corpus, file_build):
    _, database, figure, _ = file_build
    n_input = pq.read_metadata(corpus).num_rows
    rows = query(
        database,
        "select count(*), count(distinct text_id), count(*) filter (summary_label is null "
        "or trim(summary_label) = ''), count(*) filter (model_name is null) from fct_text_clusters",
    )
    assert rows == [(n_input, n_input, 0, 0)]
    clusters = query(database, "select count(*) from dim_clusters where not is_noise")[0][0]
    assert clusters >= 3
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_file_build_writes_the_map_report_exports_and_docs(corpus, file_build):
    work, database, _, _ = file_build
    output = work / "output"
    n_texts = query(database, "select count(*) from fct_text_clusters")[0][0]
    page = (output / "text_clusters.html").read_text()
    assert "<script src" not in page and "<link" not in page and "url(" not in page  # offline
    assert query(database, "select map_path from rpt_text_clusters_figure") == [
        (str((output / "text_clusters.html").resolve()),)
    ]
    report = (output / "report.md").read_text()
    labels = [r[0] for r in query(database, "select summary_label from dim_clusters")]
    assert f"{n_texts} texts" in report and all(label in report for label in labels)
    assert "(text_clusters.html)" in report and "Metrics: noise_share" in report
    image = report.split("![The clusters](")[1].split(")")[0]
    assert (output / image).resolve() == (work / "figure.png").resolve()

    # the exports are readable by another process while the database stays closed
    exported = subprocess.run(
        [
            sys.executable,
            "-c",
            'import duckdb, sys; print(duckdb.sql("select count(*) from '
            "read_parquet('" + str(output / "exports" / "fct_text_clusters.parquet") + "')\")"
            ".fetchall()[0][0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(exported.stdout) == n_texts

    # descriptions are in the database (macros/persist_docs.sql) and dbt docs generate works
    comment = query(
        database, "select comment from duckdb_tables() where table_name = 'dim_clusters'"
    )
    assert comment[0][0].startswith("One row per cluster")
    assert_descriptions_are_comments(work / "target", database)
    ok(run_dbt(work, database, "docs", "generate", vars={"source_path": str(corpus)}))
    catalog = json.loads((work / "target" / "catalog.json").read_text())
    assert "model.text_clustering.fct_text_clusters" in catalog["nodes"]
    manifest = json.loads((work / "target" / "manifest.json").read_text())
    assert "exposure.text_clustering.text_clusters_dashboard" in manifest["exposures"]


def test_metrics_against_the_reference_sections(file_build):
    _, database, _, _ = file_build
    metrics = query(
        database,
        "select n_clusters, noise_share, silhouette, nmi, ari, purity, nmi_excluding_noise "
        "from rpt_cluster_metrics",
    )[0]
    clusters = query(database, "select count(*) from dim_clusters where not is_noise")[0][0]
    assert metrics[0] == clusters
    assert 0 <= metrics[1] < 1 and -1 <= metrics[2] <= 1
    assert all(0 < m <= 1 for m in metrics[3:])
    assert metrics[3] > 0.3  # five Debian sections are found again, roughly


def test_file_build_types_are_the_contract(file_build):
    _, database, _, _ = file_build
    types = dict(
        query(
            database,
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'fct_text_clusters'",
        )
    )
    assert types == {
        "text_id": "VARCHAR",
        "text": "VARCHAR",
        "projection": "FLOAT[2]",
        "cluster_label": "INTEGER",
        "summary_label": "VARCHAR",
        "summary_labels": "VARCHAR[]",
        "model_name": "VARCHAR",
        "topic_label": "VARCHAR",
        "topic_path": "VARCHAR[]",
        "fitted_cluster_label": "INTEGER",
        "is_excluded": "BOOLEAN",
    }
    embedded = query(database, "select typeof(embedding) from int_texts_embedded limit 1")
    assert embedded == [("FLOAT[384]",)]


def test_vectors_are_stored_without_float_compression(file_build):
    # the on-run-start hook (macros/float_storage.sql): ALP saved no space on embeddings
    # and cost time to write and read them; the texts keep their compression
    _, database, _, _ = file_build
    storage = query(
        database,
        "select table_name, segment_type, compression from (select 'int_texts_embedded' as "
        "table_name, * from pragma_storage_info('int_texts_embedded') union all select "
        "'int_embedding_cache', * from pragma_storage_info('int_embedding_cache')) "
        "where segment_type in ('FLOAT', 'VARCHAR') group by all",
    )
    floats = {(t, c) for t, kind, c in storage if kind == "FLOAT"}
    assert floats and not any(c.startswith("ALP") for _, c in floats), floats
    assert {c for _, kind, c in storage if kind == "VARCHAR"} != {"Uncompressed"}


def test_texts_without_words_are_kept_as_noise_with_the_default_label(file_build):
    _, database, _, _ = file_build
    rows = query(
        database,
        "select cluster_label, summary_label, model_name, projection is null "
        "from fct_text_clusters where text is null or not regexp_matches(text, '[\\pL\\pN]')",
    )
    assert rows == [(-1, "Unclassified", "default_label", True)] * len(NO_WORDS)


def test_offline_labels_are_keywords_of_the_cluster(file_build):
    _, database, _, result = file_build
    rows = query(
        database,
        "select model_name, summary_label, top_keywords from dim_clusters where not is_noise",
    )
    assert {r[0] for r in rows} == {"c-tf-idf"}
    for _, label, keywords in rows:
        # the best keyword leads, or the phrase that holds it ("logging" -> "logging program")
        first = label.split(", ")[0]
        assert first in keywords and label_key(keywords[0]) <= label_key(first)
    assert (
        "labelling" in result.stderr + result.stdout and "c-tf-idf" in result.stdout + result.stderr
    )


def test_label_quality_scores_every_cluster_and_topic_label(file_build):
    _, database, _, _ = file_build
    rows = query(
        database,
        "select topic_key, topic_id, model_name, label_auc, keyword_label_auc, "
        "level_label_auc, level_label_auc_weighted, skip_reason, level from rpt_label_quality",
    )
    assert sorted(r[0] for r in rows) == sorted(
        r[0] for r in query(database, "select topic_key from dim_topics")
    )
    scored = [r for r in rows if r[1] != -1]
    assert {r[8] for r in scored} == {r[8] for r in rows}  # every level
    assert all(0 <= r[3] <= 1 and 0 <= r[4] <= 1 and r[7] is None for r in scored)
    assert all(r[3] is None for r in rows if r[1] == -1)  # noise is not scored
    assert {r[2] for r in scored} == {"c-tf-idf"}
    clusters = [r for r in scored if r[8] == 0]
    # keyword labels of five Debian sections find their own texts far better than chance
    assert clusters[0][5] == pytest.approx(sum(r[3] for r in clusters) / len(clusters))
    assert clusters[0][5] > 0.8


def test_repeated_texts_get_distinct_stable_ids(file_build):
    _, database, _, _ = file_build
    ids = [r[0] for r in query(database, "select text_id from stg_texts where text_id like '%-2'")]
    assert len(ids) >= 1 and all(len(i) == 18 for i in ids)


def test_a_second_build_gives_identical_results(corpus, file_build, tmp_path):
    _, database, _, _ = file_build
    again = tmp_path / "again.duckdb"
    ok(run_dbt(tmp_path, again, "build", vars={"source_path": str(corpus), "savefig": False}))
    assert mart(again) == mart(database)
    assert query(again, "select figure_path from rpt_text_clusters_figure") == [(None,)]

    # the same database again: every embedding comes from the cache
    rebuilt = ok(run_dbt(tmp_path, again, "build", vars={"source_path": str(corpus)}))
    assert "all texts already in the cache" in rebuilt.stderr + rebuilt.stdout
    assert "embedded" not in (rebuilt.stderr + rebuilt.stdout).replace("int_texts_embedded", "")
    assert mart(again) == mart(database)
    assert_descriptions_are_comments(tmp_path / "target", again)  # on tables made anew too


def assert_descriptions_are_comments(target: Path, database: Path) -> None:
    """Every model of the project, and every column of it with a description, carries its
    yml description as a DuckDB comment (the manifest of the build in ``target``)."""
    manifest = json.loads((target / "manifest.json").read_text())
    models = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["package_name"] == "text_clustering"
    ]
    relations = dict(
        query(
            database,
            "select table_name, comment from duckdb_tables() union all "
            "select view_name, comment from duckdb_views() where not internal",
        )
    )
    columns = {
        (table, column): comment
        for table, column, comment in query(
            database, "select table_name, column_name, comment from duckdb_columns()"
        )
    }
    assert len(models) > 20 and any(n["config"]["materialized"] == "view" for n in models)
    for node in models:
        assert relations[node["alias"]] == node["description"], node["name"]
        described = {name: c["description"] for name, c in node["columns"].items()}
        assert described and all(described.values()), node["name"]
        for name, description in described.items():
            assert columns[(node["alias"], name)] == description, (node["name"], name)


def test_embeddings_through_an_openai_compatible_endpoint_are_cached(corpus, tmp_path):
    database = tmp_path / "api.duckdb"
    variables = {
        "source_path": str(corpus),
        "embedding_model": "openai:fake-embed",
        "savefig": False,
    }
    with serve() as (url, state):
        env = {"OPENAI_BASE_URL": url}
        ok(run_dbt(tmp_path, database, "build", vars={**variables, "llm_model": "m"}, env=env))
        n_texts = query(database, "select count(*) from stg_texts where is_embeddable")[0][0]
        # rpt_label_quality embeds the labels with the texts' model, through the endpoint too
        labels = query(
            database,
            "select count(distinct label), bool_and(embedding_model = 'openai:fake-embed') "
            "from rpt_label_quality, unnest([summary_label, keyword_label]) as t(label) "
            "where topic_id <> -1",
        )[0]
        assert labels[1] and labels[0] > 0
        # the repeated text is embedded once
        assert state.embedded_texts == n_texts - 1 + labels[0]
        assert query(database, "select distinct typeof(embedding) from int_texts_embedded") == [
            ("FLOAT[32]",)
        ]
        calls = state.calls
        ok(run_dbt(tmp_path, database, "build", vars={**variables, "llm_model": "m"}, env=env))
        assert state.calls == calls  # embeddings and labels all from the caches


@pytest.fixture(scope="module")
def table_database(file_build, tmp_path_factory) -> Path:
    """A database that already holds raw.packages(package, body, vec), the user's own table,
    built once with TABLE_VARS (no LLM)."""
    _, built, _, _ = file_build
    work = tmp_path_factory.mktemp("table_input")
    database = work / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(f"attach '{built}' as built (read_only)")
        con.execute("create schema raw")
        con.execute(
            "create table raw.packages as select s.text_id as package, s.text as body, "
            "e.embedding::float[] as vec from built.stg_texts s "
            "left join built.int_texts_embedded e using (text_id)"
        )
    ok(run_dbt(work, database, "build", vars=TABLE_VARS))
    return database


TABLE_VARS = {
    "source_path": None,
    "source_table": "raw.packages",
    "text_column": "body",
    "id_column": "package",
    "embedding_column": "vec",
    "savefig": False,
}


def test_table_input_with_own_ids_and_vectors(file_build, table_database):
    _, file_database, _, _ = file_build
    # Same texts, same vectors: same clusters and labels as the file build, under the same ids.
    assert mart(table_database) == mart(file_database)
    # the input's own vectors: labels embedded with var embedding_model (its dimension fits)
    quality = query(
        table_database,
        "select distinct embedding_model, skip_reason, level_label_auc is not null "
        "from rpt_label_quality",
    )
    assert quality == [("all-MiniLM-L6-v2", None, True)]


def llm_build(tmp_path, database, url, *args, key=SENTINEL_KEY, **variables):
    return run_dbt(
        tmp_path,
        database,
        "build",
        *args,
        vars={**TABLE_VARS, "llm_model": "asked-model", **variables},
        env={"OPENAI_API_KEY": key, "OPENAI_BASE_URL": url},
    )


PROMPT_VARS = {
    "n": 2,
    "query_title": "Package descriptions",
    "context": "Name what these Debian packages are for.",
    "examples": ["Chess engines", "Mail servers"],
}


def test_llm_labels_over_http_cached_and_the_key_never_leaks(table_database, tmp_path):
    with serve() as (url, state):
        result = ok(llm_build(tmp_path, table_database, url, **PROMPT_VARS))
        prompt = state.requests[0]["messages"][-1]["content"]
        assert prompt.startswith("Name what these Debian packages are for.")
        assert "## Package descriptions\n1. " in prompt
        assert "Examples of good labels for other groups: Chess engines; Mail servers" in prompt
        clusters = query(
            table_database,
            "select cluster_label, summary_labels, model_name, label_status, attempts "
            "from dim_clusters join int_clusters_labelled using (cluster_label, summary_labels, "
            "model_name, label_status) where not is_noise",
        )
        # label quality is measured for the LLM's labels and the keyword labels alike
        quality = query(
            table_database,
            "select model_name, label_auc, keyword_label_auc from rpt_label_quality "
            "where level = 0 and topic_id <> -1",
        )
        assert len(quality) == len(clusters)
        assert all(r[0] == MODEL_REPORTED and 0 <= r[1] <= 1 and 0 <= r[2] <= 1 for r in quality)
        assert state.label_calls == len(clusters) >= 3
        assert all(r[2] == MODEL_REPORTED and len(r[1]) == 2 and r[3] == "ok" for r in clusters)
        assert all(h.get("authorization") == f"Bearer {SENTINEL_KEY}" for h in state.headers)
        # each cluster's labels come from its own representatives (the server builds them
        # from the examples it is sent): they differ between clusters
        assert len({tuple(r[1]) for r in clusters}) == len(clusters)
        assert "LLM plan" in result.stderr + result.stdout
        # the topics above the clusters are named by the LLM too, bottom-up: a topic's
        # prompt shows its parts' names; the whole hierarchy costs <= 1.3 x the clusters
        topics = query(
            table_database,
            "select level, topic_id, model_name, label_status, parent_topic_id from dim_topics "
            "where level > 0 and not is_noise",
        )
        families = {(r[0], r[4]) for r in topics}  # sibling topics are named in one call
        assert topics and state.topic_calls == len(families) < len(topics)
        assert all(r[2] == MODEL_REPORTED and r[3] == "ok" for r in topics)
        topic_prompts = [
            r["messages"][-1]["content"] for r in state.requests if "## Its parts" in str(r)
        ]
        cluster_names = {r[1][0] for r in clusters}
        assert all(any(f"- {name}" in p for name in cluster_names) for p in topic_prompts[:1])
        assert state.chat_calls <= 1.3 * len(clusters)
        calls = state.chat_calls

        # unchanged input: every answer comes from the cache, even after --full-refresh
        ok(llm_build(tmp_path, table_database, url, **PROMPT_VARS))
        ok(llm_build(tmp_path, table_database, url, "--full-refresh", **PROMPT_VARS))
        assert state.label_calls == len(clusters) and state.chat_calls == calls
        assert mart(table_database) == [
            r for r in mart(table_database) if r[5] in (MODEL_REPORTED, "default_label")
        ]

    leaks = [
        p for p in tmp_path.rglob("*") if p.is_file() and SENTINEL_KEY.encode() in p.read_bytes()
    ]
    assert leaks == []
    assert SENTINEL_KEY not in result.stdout + result.stderr
    assert SENTINEL_KEY.encode() not in table_database.read_bytes()
    assert not any(SENTINEL_KEY in json.dumps(r) for r in state.requests)  # header only


def test_flaky_endpoint_still_labels_every_text_and_retries_only_failures(table_database, tmp_path):
    with serve(fail_rate=0.3) as (url, state):
        # a model name of its own: an empty cache for this test; one attempt per cluster,
        # so that some clusters do fail
        ok(llm_build(tmp_path, table_database, url, llm_model="flaky-model", llm_max_attempts=1))
        statuses = dict(
            query(table_database, "select label_status, count(*) from dim_clusters group by 1")
        )
        failed = statuses.get("failed", 0)
        assert failed >= 1 and statuses["ok"] >= 1
        reasons = query(
            table_database,
            "select distinct label_error, summary_label, model_name from dim_clusters "
            "where label_status = 'failed'",
        )
        assert reasons == [("HTTP 500 (InternalServerError)", "Unclassified", "default_label")]
        unlabelled = query(
            table_database, "select count(*) from fct_text_clusters where summary_label is null"
        )
        assert unlabelled == [(0,)]

        calls_before, state.fail_rate = state.label_calls, 0.0
        ok(llm_build(tmp_path, table_database, url, llm_model="flaky-model", llm_max_attempts=1))
        assert state.label_calls - calls_before == failed  # only the failed clusters again
        assert query(
            table_database, "select distinct label_status from dim_clusters where not is_noise"
        ) == [("ok",)]


def test_dry_run_counts_calls_and_tokens_and_calls_nothing(table_database, tmp_path):
    with serve() as (url, state):
        result = ok(
            llm_build(tmp_path, table_database, url, llm_model="dry-model", llm_dry_run=True)
        )
        assert state.calls == 0
    output = result.stdout + result.stderr
    assert "0 answered by the cache" in output and "[dry run: nothing asked]" in output
    assert "LLM plan, level 0:" in output and "LLM plan, level 1:" in output  # per layer
    assert "topic prompt(s)" in output
    rows = query(
        table_database,
        "select distinct label_status, model_name, label_error like '%dry run%' "
        "from dim_clusters where not is_noise",
    )
    assert rows == [("not_asked", "default_label", True)]


@pytest.mark.parametrize(
    ("vars", "message"),
    [
        ({"text_column": "nope"}, "var text_column = 'nope' is not a column of the input"),
        ({"id_column": "nope"}, "var id_column = 'nope' is not a column of the input"),
        ({"source_table": "raw.x"}, "are both set: set the one you do not use to null"),
        ({"source_path": "texts.xlsx"}, "must end in .parquet, .csv"),
        ({"source_path": None}, "no input: set var source_path"),
        ({"samples_per_cluster": 0}, "var samples_per_cluster must be an integer >= 1"),
        ({"source_path": None, "source_table": "raw; drop table x"}, "is not a table name"),
    ],
)
def test_bad_vars_stop_with_a_message_naming_them(corpus, tmp_path, vars, message):
    variables = {"source_path": str(corpus), **vars}
    result = run_dbt(
        tmp_path, tmp_path / "bad.duckdb", "compile", "--select", "stg_texts+", vars=variables
    )
    assert result.returncode != 0
    assert message in result.stdout


@pytest.mark.parametrize(
    ("model", "vars", "message"),
    [
        ("int_texts_projected", {"n_neighbors": 1}, "`n_neighbors` must be an integer >= 2"),
        ("int_texts_clustered", {"eps": -1}, "dbt var `eps` must be a number > 0.0, got -1"),
        ("int_llm_replies", {"llm_timeout": "soon"}, "dbt var `llm_timeout` must be a number"),
        ("int_topic_keywords", {"n": -1}, "dbt var `n` must be an integer >= 1, got -1"),
    ],
)
def test_bad_var_in_a_model_names_the_var(table_database, tmp_path, model, vars, message):
    result = run_dbt(
        tmp_path, table_database, "run", "--select", model, vars={**TABLE_VARS, **vars}
    )
    assert result.returncode != 0
    assert message in result.stdout
