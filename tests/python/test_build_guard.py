"""``python -m text_clustering build``: dbt is not started when nothing it reads changed, and
every change it reads (input, vars, environment, project files, database, written files)
builds again.

One real build of 300 Debian descriptions, labelled by the local fake LLM with a sentinel
key, in a copy of the project whose seed the tests can change; then ``--check`` after each
change (it builds nothing), undone where it can be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO
from dbt_helpers import SENTINEL_KEY, dbt_command, project_with_overrides
from fake_openai import serve

from text_clustering import build_guard
from text_clustering.build_guard import Seen, before_build, stamp_after_build, why_build
from text_clustering.build_inputs import (
    STAMP_NAME,
    env_var_names,
    environment_digest,
    layout,
    pending_llm_requests,
    project_files,
    significant_args,
    source_relations,
)

SEED = "override_id,action,level,cluster_id,into_cluster_id,text_id,label,note\n"


def guarded(work, database, source, *extra, env=None, variables=None):
    """``python -m text_clustering build`` as :func:`dbt_helpers.run_dbt` runs dbt."""
    command, environment = dbt_command(
        work,
        database,
        *extra,
        vars={"source_path": str(source), "id_column": "package", **(variables or {})},
        env=env,
    )
    command[0:1] = [sys.executable, "-m", "text_clustering", "build"]
    return subprocess.run(
        command,
        cwd=work / "project",
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Guarded builds with an LLM (a sentinel key) in a new target folder: the first is not
    recorded (no manifest to read the input with before it), the second records, the third
    finds nothing changed."""
    work = tmp_path_factory.mktemp("guard")
    project_with_overrides(work, SEED)
    source = work / "texts.parquet"
    pq.write_table(pq.read_table(REPO / "data" / "debian_packages.parquet").slice(0, 300), source)
    database = work / "guard.duckdb"
    with serve() as (url, state):
        env = {"OPENAI_API_KEY": SENTINEL_KEY, "OPENAI_BASE_URL": url}
        unrecorded = guarded(work, database, source, env=env)
        calls = state.calls
        first = guarded(work, database, source, env=env)
        dbt_log = (work / "logs" / "dbt.log").read_text()
        second = guarded(work, database, source, env=env)
        calls_again = state.calls - calls
    return {
        "work": work,
        "database": database,
        "source": source,
        "env": env,
        "unrecorded": unrecorded,
        "first": first,
        "second": second,
        "llm_calls": calls,
        "llm_calls_again": calls_again,
        "dbt_log": dbt_log,
    }


def check(built, *extra, env=None, variables=None):
    """``--check`` of the build fixture's call with ``extra`` args / changed env or vars."""
    result = guarded(
        built["work"],
        built["database"],
        built["source"],
        "--check",
        *extra,
        env={**built["env"], **(env or {})},
        variables=variables,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return result.returncode, result.stderr


def test_a_build_that_ran_dbt_is_recorded_and_the_same_call_again_does_not_start_dbt(built):
    unrecorded, first, second = built["unrecorded"], built["first"], built["second"]
    assert unrecorded.returncode == 0, unrecorded.stdout[-4000:] + unrecorded.stderr[-3000:]
    assert "not recorded: the input could not be read before this build" in unrecorded.stderr
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-3000:]
    assert "running dbt build: no record of an earlier build" in first.stderr
    assert "Completed successfully" in first.stdout and "not recorded" not in first.stderr
    assert built["llm_calls"] > 0  # the labels came from the LLM: nothing left to ask
    assert second.returncode == 0, second.stderr
    assert "nothing changed since the build of" in second.stderr
    assert "dbt not started" in second.stderr
    assert second.stdout == ""  # dbt printed nothing: it did not run
    assert (built["work"] / "logs" / "dbt.log").read_text() == built["dbt_log"]
    assert built["llm_calls_again"] == 0
    stamp = json.loads((built["work"] / "target" / STAMP_NAME).read_text())
    assert stamp["database_path"] == str(built["database"])
    assert {"model success", "test pass"} <= set(stamp["nodes"])
    assert any(path.endswith("text_clusters.png") for path in stamp["files"])


def test_nothing_secret_is_recorded(built):
    leaks = [
        p
        for p in built["work"].rglob("*")
        if p.is_file() and SENTINEL_KEY.encode() in p.read_bytes()
    ]
    assert leaks == []
    said = [built[key].stdout + built[key].stderr for key in ("unrecorded", "first", "second")]
    assert not any(SENTINEL_KEY in text for text in said)


def test_logging_options_do_not_count(built):
    code, said = check(built, "--quiet", "--log-level", "debug")
    assert code == 0 and "nothing changed" in said


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"variables": {"n": 2}}, "the dbt arguments changed"),
        ({"extra": ("--threads", "1")}, "the dbt arguments changed"),
        ({"env": {"TEXT_CLUSTERING_SOMETHING": "1"}}, "the environment"),
        ({"env": {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}}, "the environment"),
        ({"extra": ("--full-refresh",)}, "--full-refresh rebuilds everything"),
    ],
)
def test_other_settings_build_again(built, change, reason):
    code, said = check(
        built, *change.get("extra", ()), **{k: v for k, v in change.items() if k != "extra"}
    )
    assert code == 1 and f"a build would run: {reason}" in said


def test_a_changed_input_builds_again_and_the_same_input_again_does_not(built):
    source = built["source"]
    original = pq.read_table(source)
    texts = original["text"].to_pylist()
    texts[17] = texts[17] + " (edited)"
    pq.write_table(
        original.set_column(original.schema.get_field_index("text"), "text", pa.array(texts)),
        source,
    )
    code, said = check(built)
    assert code == 1 and "the input (the project's sources) changed" in said
    pq.write_table(original, source)  # a new file, the same rows
    code, said = check(built)
    assert code == 0, said


def test_a_changed_project_file_builds_again(built):
    project_with_overrides(built["work"], SEED + "o1,rename,0,0,,,Renamed,\n")
    code, said = check(built)
    assert code == 1 and "the dbt project's files changed" in said
    project_with_overrides(built["work"], SEED)
    assert check(built)[0] == 0


# The tests below change what cannot be put back; the last one builds again.


def test_a_written_file_changed_or_gone_builds_again(built):
    stamp = json.loads((built["work"] / "target" / STAMP_NAME).read_text())
    figure = next(Path(path) for path in stamp["files"] if path.endswith(".png"))
    written = figure.stat()
    figure.write_bytes(figure.read_bytes())  # the same bytes, written again: not the build's
    code, said = check(built)
    assert code == 1 and f"a file the build wrote changed or is gone ({figure})" in said
    os.utime(figure, ns=(written.st_atime_ns, written.st_mtime_ns))  # as the build left it
    assert check(built)[0] == 0
    report = next(Path(path) for path in stamp["files"] if path.endswith("report.md"))
    report.unlink()
    code, said = check(built)
    assert code == 1 and f"a file the build wrote changed or is gone ({report})" in said


def test_a_write_to_the_database_builds_again_and_the_build_records_again(built):
    with duckdb.connect(str(built["database"])) as connection:
        connection.sql("create table someone_elses as select 1 as x")
    code, said = check(built)
    assert code == 1 and "the database changed since the last build" in said
    with serve() as (url, state):
        rebuilt = guarded(
            built["work"],
            built["database"],
            built["source"],
            env={**built["env"], "OPENAI_BASE_URL": url},
        )
        assert rebuilt.returncode == 0, rebuilt.stdout[-4000:] + rebuilt.stderr[-3000:]
        assert "running dbt build:" in rebuilt.stderr
        assert "Completed successfully" in rebuilt.stdout
        assert state.calls == 0  # a rebuild of unchanged texts: the reply cache answers
        code, said = check(built, env={"OPENAI_BASE_URL": url})
    assert code == 0 and "nothing changed" in said


def test_a_failed_build_leaves_no_record(built):
    failed = guarded(
        built["work"],
        built["database"],
        built["source"],
        env=built["env"],
        variables={"text_column": "no_such_column"},
    )
    assert failed.returncode != 0
    assert not (built["work"] / "target" / STAMP_NAME).exists()
    code, said = check(built)
    assert code == 1 and "no record of an earlier build" in said


# The pieces, on their own


def test_only_logging_options_are_dropped():
    args = ["--log-path", "x", "--vars", "{n: 2}", "--quiet", "--log-level=debug", "-s", "a"]
    assert significant_args(args) == ["--vars", "{n: 2}", "-s", "a"]


def test_layout_follows_dbt_options_and_environment(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: p\ntarget-path: built\n")
    (tmp_path / "profiles.yml").write_text("p: {}\n")
    where = layout(["--project-dir", str(tmp_path)], {"DBT_DUCKDB_PATH": str(tmp_path / "d.db")})
    assert where.target_dir == tmp_path / "built"
    assert where.profiles_file == tmp_path / "profiles.yml"
    assert where.database == tmp_path / "d.db"
    where = layout([f"--project-dir={tmp_path}", "--target-path", "/elsewhere"], {})
    assert str(where.target_dir) == "/elsewhere"


def test_requests_without_a_final_reply_are_counted(tmp_path):
    relations = {
        "int_clusters_named": "x.main.int_clusters_named",
        "int_topics_named": "x.labels.t",
    }
    with duckdb.connect(str(tmp_path / "x.duckdb")) as connection:
        assert pending_llm_requests(connection, {}) == 0  # no labels yet: nothing pending
        connection.sql(
            "create table int_clusters_named as select * from (values "
            "('ok', null), ('ok', 'ok'), ('failed', null), ('ok', 'skipped'), ('noise', null))"
            " as t(label_status, relabel_status)"
        )
        connection.sql("create schema labels")  # a model in a schema of its own
        connection.sql(
            "create table labels.t as select * from (values ('not_asked', null))"
            " as t(label_status, relabel_status)"
        )
        assert pending_llm_requests(connection, relations) == 3


def test_a_build_with_pending_requests_is_not_recorded(tmp_path):
    database = tmp_path / "x.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.sql(
            "create table int_clusters_named as select 'skipped' as label_status, "
            "null as relabel_status"
        )
    (tmp_path / "target").mkdir()
    model = {"resource_type": "model", "name": "int_clusters_named"}
    manifest = {"sources": {}, "nodes": {"m": {**model, "relation_name": "x.int_clusters_named"}}}
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest))
    where = layout(["--project-dir", str(tmp_path)], {"DBT_DUCKDB_PATH": str(database)})
    before = before_build(where, [], {})
    with duckdb.connect(str(database)) as connection:  # the build writes the database
        connection.sql("create table written as select 1 as x")
    said = stamp_after_build(where, [], {}, before)
    assert (
        said is not None
        and "the LLM requests of 1 cluster(s) or topic(s) have no final reply" in said
    )
    assert not where.stamp.exists()


def test_source_relations_are_read_as_dbt_duckdb_reads_them():
    manifest = {
        "sources": {
            "source.p.s.files": {
                "meta": {"external_location": "{reader}", "reader": "read_parquet('a.parquet')"},
                "relation_name": '"db"."main"."files"',
            },
            "source.p.s.path": {
                "config": {"meta": {"external_location": "data/{name}.csv"}},
                "name": "b",
                "relation_name": '"db"."main"."b"',
            },
            "source.p.s.table": {"meta": {}, "relation_name": '"db"."raw"."tickets"'},
        }
    }
    assert source_relations(manifest) == [
        "read_parquet('a.parquet')",
        "'data/b.csv'",
        '"db"."raw"."tickets"',
    ]


def test_a_database_the_build_did_not_write_is_not_recorded(tmp_path):
    database = tmp_path / "checked.duckdb"
    duckdb.connect(str(database)).close()
    where = layout(["--project-dir", str(tmp_path)], {"DBT_DUCKDB_PATH": str(database)})
    before = before_build(where, [], {})
    said = stamp_after_build(where, [], {}, before)  # as if dbt wrote another file
    assert said is not None and f"dbt did not write {database}: pass --database" in said
    assert not where.stamp.exists()


def test_the_environment_counts_what_the_project_reads_and_secrets_by_presence(tmp_path):
    (tmp_path / "dbt_project.yml").write_text(
        "name: p\nvars:\n  x: \"{{ env_var('MY_SCHEMA') }}\"\n"
    )
    (tmp_path / "profiles.yml").write_text("p: {path: \"{{ env_var( 'WAREHOUSE_FILE', 'a') }}\"}\n")
    where = layout(["--project-dir", str(tmp_path)], {})
    names = env_var_names(project_files(where))
    assert names == {"MY_SCHEMA", "WAREHOUSE_FILE"}
    base = {"MY_SCHEMA": "a", "OPENAI_API_KEY": "sk-1", "DBT_ENV_SECRET_PW": "p1", "HOME": "/h"}
    digest = environment_digest(base, names)
    assert environment_digest({**base, "MY_SCHEMA": "b"}, names) != digest
    assert environment_digest({**base, "HOME": "/elsewhere"}, names) == digest
    # secrets: a new value does not count, whether one is set does
    assert environment_digest({**base, "OPENAI_API_KEY": "sk-2"}, names) == digest
    assert environment_digest({**base, "DBT_ENV_SECRET_PW": "p2"}, names) == digest
    assert environment_digest({k: v for k, v in base.items() if k != "OPENAI_API_KEY"}) != digest


def test_the_command_line_keeps_its_own_options_and_passes_the_rest_to_dbt(monkeypatch, capsys):
    from text_clustering import __main__, build_guard

    calls = []
    monkeypatch.setattr(
        build_guard, "build", lambda args, **options: calls.append((args, options)) or 7
    )
    assert __main__.main(["build", "-s", "dim_clusters", "--check", "--database=x.duckdb"]) == 7
    assert __main__.main(["build", "--force", "--database", "y.duckdb", "--vars", "{n: 2}"]) == 7
    assert calls == [
        (["-s", "dim_clusters"], {"force": False, "check": True, "database": "x.duckdb"}),
        (["--vars", "{n: 2}"], {"force": True, "check": False, "database": "y.duckdb"}),
    ]
    assert __main__.main(["build", "--database"]) == 2
    assert __main__.main(["build", "--help"]) == 0 and "--check" in capsys.readouterr().out


def small_project(tmp_path):
    """A database with a source table and the manifest of a build that read it."""
    database = tmp_path / "x.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.sql("create table texts as select range as id from range(100)")
    (tmp_path / "dbt_project.yml").write_text("name: p\n")
    (tmp_path / "target").mkdir()
    source = {"meta": {}, "relation_name": "x.main.texts"}
    (tmp_path / "target" / "manifest.json").write_text(
        json.dumps({"sources": {"source.p.s.texts": source}, "nodes": {}})
    )
    where = layout(["--project-dir", str(tmp_path)], {"DBT_DUCKDB_PATH": str(database)})
    return database, where


def test_a_build_is_recorded_only_if_its_input_did_not_change_while_dbt_built(tmp_path):
    database, where = small_project(tmp_path)
    before = before_build(where, [], {})
    with duckdb.connect(str(database)) as connection:  # the build writes the database
        connection.sql("create table written as select 1 as x")
    assert stamp_after_build(where, [], {}, before) is None and where.stamp.exists()
    where.stamp.unlink()
    before = before_build(where, [], {})
    with duckdb.connect(str(database)) as connection:  # a row arrives while dbt builds
        connection.sql("insert into texts values (100)")
    said = stamp_after_build(where, [], {}, before)
    assert said is not None and "the input changed while dbt built" in said
    assert not where.stamp.exists()


def test_a_project_file_changed_while_dbt_built_is_not_recorded(tmp_path):
    database, where = small_project(tmp_path)
    before = before_build(where, [], {})
    (tmp_path / "dbt_project.yml").write_text("name: p\nvars: {n: 2}\n")
    with duckdb.connect(str(database)) as connection:
        connection.sql("create table written as select 1 as x")
    said = stamp_after_build(where, [], {}, before)
    assert said is not None and "the dbt project's files changed while dbt built" in said


def test_a_build_reuses_the_digests_the_check_before_it_computed(tmp_path, monkeypatch):
    database, where = small_project(tmp_path)
    parquet = tmp_path / "texts.parquet"  # an input file, read as dbt-duckdb reads it
    pq.write_table(pa.table({"id": list(range(100))}), parquet)
    source = {"meta": {"external_location": str(parquet)}, "relation_name": "x.main.t"}
    manifest = {"sources": {"source.p.s.t": source}, "nodes": {}}
    (where.target_dir / "manifest.json").write_text(json.dumps(manifest))
    before = before_build(where, [], {})
    with duckdb.connect(str(database)) as connection:  # the build writes the database
        connection.sql("create table written as select 1 as x")
    assert stamp_after_build(where, [], {}, before) is None
    pq.write_table(pa.table({"id": list(range(101))}), parquet)  # new input: builds
    seen = Seen()
    assert why_build(where, [], {}, seen) == "the input (the project's sources) changed"
    relations = source_relations(manifest)
    assert seen.inputs and seen.sources and seen.relations == relations
    calls = []
    for name in ("inputs", "sources_digest"):
        real = getattr(build_guard, name)
        monkeypatch.setattr(
            build_guard, name, lambda *a, real=real, name=name: calls.append(name) or real(*a)
        )
    reused = before_build(where, [], {}, seen)
    assert calls == [] and (reused.inputs, reused.sources) == (seen.inputs, seen.sources)
    # what the check did not compute, or computed for other relations, is computed
    fresh = before_build(where, [], {}, Seen(relations=["'other.parquet'"], sources="stale"))
    assert calls == ["sources_digest", "inputs"]
    assert (fresh.inputs, fresh.sources, fresh.relations) == (seen.inputs, seen.sources, relations)
