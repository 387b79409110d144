"""The Spark path on a real standalone cluster: a master and two workers, each a process of
its own on 127.0.0.1 (:func:`text_clustering.spark.local_cluster`), against `dbt build` on
the same input.

Slow (marked ``spark``, 4-9 minutes; it runs in `make test`): one dbt build of the demo's
2,914 Debian descriptions (plus texts without words and a repeat) with ``max_fit_rows``
1,500, so half the texts are placed on the fit rather than fitted; then
``python -m text_clustering spark`` on the same texts with the DuckDB build's vectors given
by var ``embedding_column``; then a real embedding run of 150 texts through the Spark map,
whose cache must hold the DuckDB cache's keys and vectors.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO
from dbt_helpers import SENTINEL_KEY, ok, run_dbt
from fake_openai import MODEL_REPORTED, serve

from text_clustering.errors import ConfigError, EngineError
from text_clustering.spark import DEFAULT_VARS, check_master, local_cluster, settings_from
from text_clustering.steps.embedding import cache_model, embedding_key_sql

pytestmark = pytest.mark.spark

VARS = {"max_fit_rows": 1500}
NO_WORDS = [None, "", "?!"]
SPARK_TIMEOUT = 900  # seconds for one run of the command (it is ~1-2 minutes)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    demo = pq.read_table(REPO / "data" / "debian_packages.parquet").select(["package", "text"])
    extra = pa.table(
        {
            "package": [f"no-words-{i}" for i in range(len(NO_WORDS))] + ["repeat"],
            "text": [*NO_WORDS, demo["text"][0].as_py()],
        }
    )
    path = tmp_path_factory.mktemp("spark_corpus") / "texts.parquet"
    pq.write_table(pa.concat_tables([demo, extra]), path)
    return path


@pytest.fixture(scope="module")
def duckdb_build(corpus, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("spark_duckdb")
    database = work / "build.duckdb"
    variables = {"source_path": str(corpus), "savefig": False, "map_path": None, **VARS}
    ok(run_dbt(work, database, "build", vars={**variables, "report_path": None}))
    return database


@pytest.fixture(scope="module")
def vectors_input(duckdb_build, tmp_path_factory) -> Path:
    """The same texts in the same order with the DuckDB build's vectors (``vec``)."""
    path = tmp_path_factory.mktemp("spark_vectors") / "texts_with_vectors.parquet"
    with duckdb.connect(str(duckdb_build), read_only=True) as con:
        table = con.sql(
            "select s.text, e.embedding::float[] as vec from stg_texts s "
            "left join int_texts_embedded e using (text_id) order by s.source_row"
        ).arrow()
    pq.write_table(table.read_all() if hasattr(table, "read_all") else table, path)
    return path


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2, cores=1, memory="1g") as running:
        yield running


def spark_command(
    master: str, output: Path, *args: str, timeout: float = SPARK_TIMEOUT, env_extra=None
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(
        SPARK_LOCAL_IP="127.0.0.1",
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]),
        **(env_extra or {}),
    )
    command = [sys.executable, "-m", "text_clustering", "spark", "--master", master]
    return subprocess.run(
        [*command, "--output", str(output), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def spark_run(cluster, vectors_input, tmp_path_factory) -> tuple[Path, dict]:
    output = tmp_path_factory.mktemp("spark_out")
    result = spark_command(
        cluster.url,
        output,
        *("--source-path", str(vectors_input), "--embedding-column", "vec"),
        *("--vars", json.dumps(VARS), "--partitions", "4"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return output, json.loads((output / "_run.json").read_text())


def parquet(folder: Path, sql: str = "select * from t") -> duckdb.DuckDBPyRelation:
    con = duckdb.connect()
    con.execute(f"create view t as select * from read_parquet('{folder}/*.parquet')")
    return con.sql(sql)


def test_the_cluster_has_two_worker_processes_and_both_ran_tasks(cluster, spark_run):
    _, done = spark_run
    workers = [w for w in cluster.status()["workers"] if w["state"] == "ALIVE"]
    assert len(workers) == 2 and len({w["id"] for w in workers}) == 2
    assert done["master"] == cluster.url
    # the application's executors, from Spark's status API: both workers ran tasks
    executors = [e for e in done["executors"] if e["id"] != "driver"]
    assert len({e["host_port"] for e in executors}) == 2, executors
    assert all(e["total_tasks"] > 0 for e in executors), executors
    apps = {a["id"] for a in cluster.status()["completedapps"] + cluster.status()["activeapps"]}
    assert done["application_id"] in apps
    place = next(j for j in done["jobs"] if j["description"] == "place")
    assert place["output_rows"] == done["n_texts"] - len(NO_WORDS)


def test_every_text_gets_the_duckdb_cluster_and_projection(duckdb_build, spark_run):
    output, done = spark_run
    columns = "text_id, cluster_label, projection, summary_label, model_name, topic_label"
    columns += ", topic_path"
    with duckdb.connect(str(duckdb_build), read_only=True) as con:
        ours = con.sql(f"select {columns} from fct_text_clusters order by text_id").fetchall()
    theirs = parquet(
        output / "fct_text_clusters", f"select {columns} from t order by text_id"
    ).fetchall()
    assert done["n_fit"] == VARS["max_fit_rows"] < len(ours) == done["n_texts"]
    assert [r[0] for r in theirs] == [r[0] for r in ours]  # the same ids (repeats included)
    assert [r[1] for r in theirs] == [r[1] for r in ours]  # identical clusters
    for a, b in zip(ours, theirs, strict=True):
        if a[2] is None:
            assert b[2] is None, a[0]
        else:
            assert np.max(np.abs(np.subtract(a[2], b[2]))) < 1e-4, (a[0], a[2], b[2])
    # labels, who wrote them, headline topics and paths: the same offline
    assert [r[3:] for r in theirs] == [r[3:] for r in ours]
    assert len({r[1] for r in ours}) > 5


def test_dim_clusters_agree_with_duckdb(duckdb_build, spark_run):
    output, _ = spark_run
    columns = "cluster_label, is_noise, n_texts, share, summary_label, summary_labels, "
    columns += "model_name, label_status, label_error, distinct_by, top_keywords, "
    columns += "representative_ids"
    with duckdb.connect(str(duckdb_build), read_only=True) as con:
        ours = con.sql(f"select {columns}, centre from dim_clusters order by 1").fetchall()
    theirs = parquet(output / "dim_clusters", f"select {columns}, centre from t order by 1")
    theirs_rows = theirs.fetchall()
    assert [r[:-1] for r in theirs_rows] == [r[:-1] for r in ours]
    for a, b in zip(ours, theirs_rows, strict=True):
        assert (a[-1] is None) == (b[-1] is None)
        if a[-1] is not None:
            assert np.max(np.abs(np.subtract(a[-1], b[-1]))) < 1e-4


def test_marts_have_the_duckdb_columns_and_types(duckdb_build, spark_run):
    output, _ = spark_run
    for mart in ("fct_text_clusters", "dim_clusters"):
        with duckdb.connect(str(duckdb_build), read_only=True) as con:
            ours = con.sql(f"describe {mart}").fetchall()
        theirs = parquet(output / mart, "describe t").fetchall()
        # Spark's arrays have no fixed length: FLOAT[2] is written as FLOAT[]
        same = [(r[0], re.sub(r"\[\d+\]", "[]", r[1])) for r in ours]
        assert [(r[0], r[1]) for r in theirs] == same, mart


def test_the_spark_embedding_map_reuses_and_extends_the_duckdb_cache(
    cluster, corpus, duckdb_build, tmp_path
):
    """150 texts: the Spark cache starts with the DuckDB cache's rows of 100 of them (the same
    keys: vectors move between the paths), the map embeds the other 50 on the workers."""
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(corpus).slice(0, 150), small)
    output = tmp_path / "out"
    cache = output / "_cache" / "embeddings"
    cache.mkdir(parents=True)
    key = embedding_key_sql(cache_model("all-MiniLM-L6-v2", {"embedding_backend": "onnx"}))
    with duckdb.connect(str(duckdb_build), read_only=True) as con:
        keyed = con.sql(  # as int_texts_embedded finds a text's vector in the cache
            f"select s.text, c.embedding_key, c.embedding_model, c.embedding::float[] as embedding "
            f"from stg_texts s join int_embedding_cache c on c.embedding_key = {key}"
        ).arrow()
    keyed = keyed.read_all() if hasattr(keyed, "read_all") else keyed
    duck = {r["text"]: r for r in keyed.to_pylist()}
    texts = [t for t in pq.read_table(small)["text"].to_pylist() if t in duck]
    assert len(texts) == 150
    seeded = [duck[t] for t in texts[:100]]
    schema = pa.schema(
        [
            ("embedding_key", pa.string()),
            ("embedding_model", pa.string()),
            ("embedding", pa.list_(pa.float32())),
        ]
    )
    pq.write_table(pa.Table.from_pylist(seeded, schema=schema), cache / "from-duckdb.parquet")
    result = spark_command(
        cluster.url,
        output,
        *("--source-path", str(small), "--vars", "{max_fit_rows: 100}", "--partitions", "2"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    done = json.loads((output / "_run.json").read_text())
    embed = next(j for j in done["jobs"] if j["description"] == "embed")
    assert embed["output_rows"] == 50 and embed["tasks"] >= 2  # only what the cache lacked
    cached = parquet(cache).arrow()
    cached = cached.read_all() if hasattr(cached, "read_all") else cached
    spark_vectors = dict(
        zip(cached["embedding_key"].to_pylist(), cached["embedding"].to_pylist(), strict=True)
    )
    assert len(spark_vectors) == cached.num_rows == 150
    for text in texts[100:]:  # embedded by the Spark map: the DuckDB path's key and vector
        row = duck[text]
        assert np.allclose(spark_vectors[row["embedding_key"]], row["embedding"], atol=1e-5)


def test_llm_labels_through_the_cached_step_with_its_cache_in_parquet(
    cluster, vectors_input, tmp_path
):
    """600 texts labelled by the local OpenAI-compatible server through the LLM step; its
    replies land in a parquet cache, so a second run asks nothing; the key leaks nowhere."""
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(vectors_input).slice(0, 600), small)
    output = tmp_path / "out"
    args = ("--source-path", str(small), "--embedding-column", "vec", "--partitions", "2")
    args += ("--vars", "{max_fit_rows: 300, llm_model: asked-model}")
    labels = "select cluster_label, summary_label, model_name from t where not is_noise order by 1"
    with serve() as (url, state):
        env = {"OPENAI_API_KEY": SENTINEL_KEY, "OPENAI_BASE_URL": url}
        first = spark_command(cluster.url, output, *args, env_extra=env)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-6000:]
        asked = state.chat_calls
        named = parquet(output / "dim_clusters", labels).fetchall()
        assert asked >= len(named) > 3
        assert {r[2] for r in named} == {MODEL_REPORTED}  # the LLM's labels, not keywords
        cached = parquet(output / "_cache" / "llm_replies", "select count(*) from t").fetchall()
        assert cached[0][0] >= len(named)
        again = spark_command(cluster.url, output, *args, env_extra=env)
        assert again.returncode == 0, again.stderr[-3000:]
        assert state.chat_calls == asked  # every prompt answered by the parquet cache
        assert parquet(output / "dim_clusters", labels).fetchall() == named
    for result in (first, again):
        assert SENTINEL_KEY not in result.stdout + result.stderr
    for path in output.rglob("*"):
        if path.is_file():
            assert SENTINEL_KEY.encode() not in path.read_bytes(), path


def test_an_unreachable_master_fails_fast_naming_it(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(EngineError, match=rf"spark://127.0.0.1:{port} cannot be reached"):
        check_master(f"spark://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="spark://HOST:PORT"):
        check_master("yarn")
    result = spark_command(
        f"spark://127.0.0.1:{port}", tmp_path / "out", "--source-path", "x.parquet"
    )
    assert result.returncode == 1 and "cannot be reached" in result.stderr
    assert time.monotonic() - started < 60
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--source-path", "{corpus}", "--text-column", "body"],
            "text_column = 'body' is not a column",
        ),
        (["--source-path", "{corpus}", "--embedding-column", "vec"], "embedding_column = 'vec'"),
        (["--source-path", "missing.parquet"], "no such file or folder"),
        (["--source-path", "{corpus}.txt"], "must end in .parquet"),
        (["--source-path", "{bad}"], "cannot be read"),
        (["--source-path", "{dup}", "--id-column", "id"], "these ids are not: NULL (1 rows), a (2"),
    ],
)
def test_bad_input_stops_before_any_work(corpus, tmp_path, args, message):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet at all")
    (tmp_path / "corpus.parquet.txt").write_text("x")
    dup = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"id": ["a", "a", None, "b"], "text": ["x", "y", "z", "w"]}), dup)
    args = [a.format(corpus=corpus, bad=bad, dup=dup) for a in args]
    if args[1].endswith(".txt"):
        args[1] = str(tmp_path / "corpus.parquet.txt")
    result = spark_command("local[1]", tmp_path / "out", *args, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert message in result.stderr
    assert not (tmp_path / "out" / "_cache").exists()  # nothing embedded


def test_unknown_vars_are_refused_and_defaults_are_the_dbt_vars():
    import yaml

    with pytest.raises(ConfigError, match=r"unknown var.*epsilon"):
        settings_from({"epsilon": 1})
    variables = yaml.safe_load((REPO / "dbt_project.yml").read_text())["vars"]
    for name, value in DEFAULT_VARS.items():
        if name != "source_path":  # dbt's default is the demo file; the command needs one given
            assert variables[name] == value, name
