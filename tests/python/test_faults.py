"""Hard faults: a build killed with SIGKILL in each heavy step, a process that ends without
closing DuckDB, two builds on one database, an endpoint that hangs or trickles its reply, and
corrupt or hostile input files. Each either builds with every row accounted for, or stops
naming the file, column or row at fault; a killed build is finished by the next one, with
nothing duplicated and the caches reused."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO
from dbt_helpers import database_held, dbt_command, ok, query, run_dbt, start_dbt
from fake_openai import MODEL_REPORTED, serve
from test_bad_input import topic_texts, write

N_TEXTS = 36  # topic_texts()


def watch(process: subprocess.Popen) -> list[str]:
    """dbt's output lines, collected by a thread as they come."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    return lines


def wait_for(lines: list[str], marker: str, process: subprocess.Popen, seconds: float = 300):
    deadline = time.monotonic() + seconds
    while not any(marker in line for line in lines):
        assert process.poll() is None, "".join(lines)[-3000:]
        assert time.monotonic() < deadline, f"no {marker!r} in {seconds}s"
        time.sleep(0.05)


# the model dbt is running when the build is killed, and whether the embedding cache holds
# every text by then (the next build must then embed nothing)
STEPS = {
    "embedding": ("int_embedding_cache", False),
    "projection": ("int_texts_projected", True),
    "clustering": ("int_texts_clustered", True),
    "llm": ("int_llm_replies", True),
    "figure": ("rpt_text_clusters_figure", True),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_build_killed_with_sigkill_is_finished_by_the_next(tmp_path, step):
    model, embedded_before = STEPS[step]
    database = tmp_path / "killed.duckdb"
    source = write(tmp_path / "t.parquet", text=topic_texts())
    variables = {
        "source_path": source,
        "min_samples": 3,
        "savefig": True,
        "figure_path": str(tmp_path / "f.png"),
    }
    # the LLM step's calls hang when it is the one killed; otherwise they are quick
    with serve(default="slow" if step == "llm" else "ok", slow_seconds=30) as (url, state):
        env = {"OPENAI_BASE_URL": url}
        process = start_dbt(tmp_path, database, "build", vars=variables, env=env)
        lines = watch(process)
        kind = "incremental" if step in ("embedding", "llm") else "table"
        wait_for(lines, f"START python {kind} model main.{model}", process)
        if step == "llm":  # in the middle of a call
            deadline = time.monotonic() + 120
            while state.chat_calls == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        process.kill()  # SIGKILL: no handler, no clean-up
        process.wait(timeout=60)
        assert process.returncode == -9
        state.default = "ok"
        result = ok(run_dbt(tmp_path, database, "build", vars=variables, env=env))
    output = result.stdout + result.stderr
    if embedded_before:
        assert "all texts already in the cache" in output  # finished work is reused
    unique = "select count(*), count(distinct {key}) from {table}"
    for table, key in (
        ("int_llm_replies", "request_hash"),
        ("int_embedding_cache", "embedding_key"),
        ("int_texts_embedded", "text_id"),
        ("fct_text_clusters", "text_id"),
    ):
        total, distinct = query(database, unique.format(table=table, key=key))[0]
        assert total == distinct  # nothing duplicated
    assert query(database, "select count(*) from fct_text_clusters") == [(N_TEXTS,)]
    assert query(database, "select distinct model_name from dim_clusters where not is_noise") == [
        (MODEL_REPORTED,)
    ]
    assert (tmp_path / "f.png").stat().st_size > 0


# dbt's command line, ended by os._exit as soon as dbt returns: no exit hook runs and DuckDB
# is never closed (as when the process ends with a DuckDB object still alive)
CUT_SHORT = (
    "import os, sys; from dbt.cli.main import cli; sys.argv[0] = 'dbt'\n"
    "try:\n    cli()\nexcept SystemExit as done:\n    os._exit(done.code or 0)\nos._exit(0)"
)


def test_a_build_whose_process_never_closes_duckdb_leaves_everything_in_the_file(tmp_path):
    """The on-run-end checkpoint (macros/checkpoint.sql) moves the build out of DuckDB's
    write-ahead log: a process that ends without closing the database leaves no `.wal`
    holding part of it, and the file alone, opened elsewhere, has every text."""
    database = tmp_path / "cut.duckdb"
    source = write(tmp_path / "t.parquet", text=topic_texts())
    command, env = dbt_command(
        tmp_path, database, "build", vars={"source_path": source, "min_samples": 3}
    )
    result = subprocess.run(
        [sys.executable, "-c", CUT_SHORT, *command[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "Completed successfully" in result.stdout
    wal = database.with_name(database.name + ".wal")
    assert not wal.exists() or wal.stat().st_size == 0, f"{wal.stat().st_size} bytes in {wal}"
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(database.read_bytes())  # the file alone, as someone would share it
    assert query(copy, "select count(*) from fct_text_clusters") == [(N_TEXTS,)]
    assert query(copy, "select count(*) from rpt_label_quality") != [(0,)]


def test_a_second_build_on_the_same_database_stops_at_once_and_the_first_finishes(tmp_path):
    database = tmp_path / "shared.duckdb"
    source = write(tmp_path / "t.parquet", text=topic_texts())
    variables = {"source_path": source, "min_samples": 3, "savefig": False}
    # the endpoint answers only once the second build has ended, so the first is inside its
    # LLM step, holding the database, however slowly the second starts
    with serve(default="held") as (url, state):
        first = start_dbt(
            tmp_path,
            database,
            "build",
            vars={**variables, "llm_max_attempts": 1, "llm_timeout": 600},
            env={"OPENAI_BASE_URL": url},
        )
        lines = watch(first)
        try:
            wait_for(lines, "START python incremental model main.int_llm_replies", first)
            started = time.monotonic()
            second = run_dbt(tmp_path / "second", database, "build", vars=variables)
            assert time.monotonic() - started < 60  # at once: dbt's start-up, no waiting
            assert first.poll() is None, "the first build ended before the second was refused"
        finally:
            state.release.set()  # the first build goes on, whatever happened
        assert second.returncode != 0, second.stdout[-3000:]
        assert "is open in another process, and DuckDB allows one writer" in second.stdout
        assert "Traceback" not in second.stdout + second.stderr
        first.wait(timeout=600)
    assert first.returncode == 0, "".join(lines)[-3000:]
    assert query(database, "select count(*) from fct_text_clusters") == [(N_TEXTS,)]


@pytest.mark.parametrize("behaviour", ["hang", "drip"])
def test_an_endpoint_that_hangs_or_trickles_ends_within_the_time_budget(tmp_path, behaviour):
    database = tmp_path / "slow.duckdb"
    source = write(tmp_path / "t.parquet", text=topic_texts())
    budget = 8
    variables = {
        "source_path": source,
        "min_samples": 3,
        "savefig": False,
        "llm_time_budget": budget,
        "llm_timeout": 60,  # longer than the budget: the budget must still hold
        "input_batch_size": 2,
    }
    with serve(default=behaviour) as (url, state):
        result = ok(
            run_dbt(tmp_path, database, "build", vars=variables, env={"OPENAI_BASE_URL": url})
        )
        assert state.chat_calls > 0
    timings = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    llm = next(r["execution_time"] for r in timings if r["unique_id"].endswith(".int_llm_replies"))
    assert llm < budget + 10, f"the LLM step took {llm:.1f}s with a budget of {budget}s"
    rows = query(
        database,
        "select label_status, summary_label from dim_clusters where not is_noise",
    )
    assert rows and all(s in ("failed", "skipped") and label for s, label in rows)
    assert query(database, "select count(*) from fct_text_clusters") == [(N_TEXTS,)]
    assert "Traceback" not in result.stdout


def corrupt_build(tmp_path, source, **variables):
    database = tmp_path / "corrupt.duckdb"
    return run_dbt(
        tmp_path,
        database,
        "build",
        vars={"source_path": str(source), "savefig": False, "min_samples": 3, **variables},
    )


def test_a_truncated_parquet_file_is_named(tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(pa.table({"text": topic_texts()}), whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = corrupt_build(tmp_path, cut)
    assert result.returncode != 0
    assert "cut.parquet" in result.stdout and "Traceback" not in result.stdout


def test_a_csv_with_a_broken_quote_is_named_and_never_read_cut(tmp_path):
    # a sniffed dialect read this file as quote-less rows cut at every comma (and took the
    # first text for the header): the dialect is pinned, so it stops naming the file
    rows = ["id,text"] + [f'{i},"{t}, with a comma"' for i, t in enumerate(topic_texts())]
    rows[6] = '5,"an unterminated quote, and then more'
    source = tmp_path / "broken.csv"
    source.write_text("\n".join(rows) + "\n")
    result = corrupt_build(tmp_path, source, id_column="id")
    assert result.returncode != 0
    assert "broken.csv" in result.stdout and "Traceback" not in result.stdout
    # the same file without the broken quote reads every text whole
    rows[6] = '5,"a quote, closed"'
    source.write_text("\n".join(rows) + "\n")
    ok(corrupt_build(tmp_path, source, id_column="id"))
    texts = query(tmp_path / "corrupt.duckdb", "select text from stg_texts")
    assert len(texts) == N_TEXTS and all(
        t.endswith(", with a comma") or "closed" in t for (t,) in texts
    )


def test_a_file_that_is_not_what_its_extension_says_is_named(tmp_path):
    source = tmp_path / "texts.parquet"
    source.write_text("text\nthis is a CSV file named .parquet\n")
    result = corrupt_build(tmp_path, source)
    assert result.returncode != 0
    assert "texts.parquet" in result.stdout and "Traceback" not in result.stdout


@pytest.mark.parametrize(
    "column",
    [
        pa.array(list(range(N_TEXTS)), pa.int64()),
        pa.array([[t, t] for t in topic_texts()], pa.list_(pa.string())),
    ],
    ids=["numbers", "lists"],
)
def test_a_text_column_of_the_wrong_type_is_named(tmp_path, column):
    source = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"text": column}), source)
    result = corrupt_build(tmp_path, source)
    assert result.returncode != 0
    assert "var text_column = 'text' is a" in result.stdout and "not text" in result.stdout
    assert "Traceback" not in result.stdout


def test_texts_of_a_megabyte_each_are_built_and_bounded(tmp_path):
    texts = topic_texts()
    texts[:3] = [f"{t} " + "mail server that delivers email " * 32_000 for t in texts[:3]]
    assert min(len(t) for t in texts[:3]) > 1_000_000
    source = write(tmp_path / "big.parquet", text=texts)
    with serve() as (url, state):
        variables = {"source_path": source, "savefig": False, "min_samples": 3}
        env = {"OPENAI_BASE_URL": url}
        ok(run_dbt(tmp_path, tmp_path / "big.duckdb", "build", vars=variables, env=env))
        prompts = [r["messages"][-1]["content"] for r in state.requests if "messages" in r]
    assert prompts and all(len(p) <= 12000 for p in prompts)
    assert query(tmp_path / "big.duckdb", "select count(*) from fct_text_clusters") == [(N_TEXTS,)]


def test_a_read_only_reader_holding_the_file_gets_a_build_a_clear_message(tmp_path):
    database = tmp_path / "read.duckdb"
    source = write(tmp_path / "t.parquet", text=topic_texts())
    ok(
        run_dbt(
            tmp_path,
            database,
            "build",
            vars={"source_path": source, "min_samples": 3, "savefig": False},
        )
    )
    with database_held(database, read_only=True):
        result = run_dbt(tmp_path, database, "build", vars={"source_path": source})
    assert result.returncode != 0
    assert "is open in another process, and DuckDB allows one writer" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert query(database, "select count(*) from fct_text_clusters") == [(N_TEXTS,)]
