"""End to end: no two clusters end with the same label, offline and with an LLM.

The corpus has five tight clusters in its own 8-d vectors (no embedding step). Two of them
share their three most frequent words ("font truetype typeface") and differ in a rarer one
("dejavu" / "liberation"), so their keyword labels collide before disambiguation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt_helpers import ok, query, run_dbt
from fake_openai import serve

from text_clustering import labels_collide

FAMILIES = [  # shared words (x3 each), a rarer word (every 4th text), size
    ("font truetype typeface", "dejavu", 24),
    ("font truetype typeface", "liberation", 22),
    ("chess board engine", "stockfish", 20),
    ("mail server smtp", "postfix", 18),
    ("radio antenna morse", "satellite", 16),
]
VARS = {
    "text_column": "body",
    "id_column": "doc_id",
    "embedding_column": "vec",
    "savefig": False,
    "map_path": None,
    "report_path": None,
    "export_dir": None,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for f, (shared, rarer, size) in enumerate(FAMILIES):
        centre = np.zeros(8)
        centre[f] = 10.0
        for i in range(size):
            words = " ".join(w for w in shared.split() for _ in range(3))
            text = f"{words}{' ' + rarer if i % 4 == 0 else ''} item{f}x{i}"
            vector = (centre + rng.normal(0, 0.3, 8)).astype("float32").tolist()
            rows.append({"doc_id": f"f{f}-{i:02d}", "body": text, "vec": vector})
    path = tmp_path_factory.mktemp("distinct") / "texts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def final_labels(database: Path) -> list[tuple]:
    return query(
        database,
        "select cluster_label, summary_label, first_labels, collision_group, distinct_by, "
        "relabel_status from int_clusters_labelled where cluster_label <> -1 "
        "and label_status = 'ok' order by cluster_label",
    )


def assert_distinct(labels: list[str]) -> None:
    assert all(label.strip() for label in labels)
    clashes = [
        (a, b) for i, a in enumerate(labels) for b in labels[i + 1 :] if labels_collide(a, b)
    ]
    assert clashes == []


def test_offline_keyword_labels_are_made_distinct(corpus, tmp_path):
    database = tmp_path / "offline.duckdb"
    ok(run_dbt(tmp_path, database, "build", vars={"source_path": str(corpus), **VARS}))
    rows = final_labels(database)
    assert len(rows) == len(FAMILIES)
    # the two font clusters' keyword labels collided; each got its own rarer word appended
    fonts = [r for r in rows if r[3] is not None]
    assert len(fonts) == 2 and labels_collide(fonts[0][2][0], fonts[1][2][0])
    assert {r[4] for r in fonts} == {"keywords"} and {r[5] for r in fonts} == {None}
    assert sorted(r[1].rsplit(", ", 1)[1] for r in fonts) == ["dejavu", "liberation"]
    assert_distinct([r[1] for r in rows])
    assert query(database, "select count(*) from int_llm_replies") == [(0,)]

    # representative_ids: the prompt's representatives, in rank order, for every cluster
    mismatches = query(
        database,
        "with reps as (select cluster_label, list(text_id order by representative_rank) ids "
        "from int_cluster_representatives group by 1) "
        "select d.cluster_label from dim_clusters d left join reps using (cluster_label) "
        "join int_cluster_prompts p using (cluster_label) "
        "where d.representative_ids <> reps.ids[1:p.n_examples] or len(d.representative_ids) = 0",
    )
    assert mismatches == []
    assert query(database, "select representative_ids from dim_clusters where is_noise") == [([],)]


def test_llm_labels_that_collide_are_relabelled_once_per_group_then_cached(corpus, tmp_path):
    database = tmp_path / "llm.duckdb"
    variables = {"source_path": str(corpus), "llm_model": "lazy-model", **VARS}
    with serve(default="collide") as (url, state):
        env = {"OPENAI_BASE_URL": url}
        first = ok(run_dbt(tmp_path, database, "build", vars=variables, env=env))
        rows = final_labels(database)
        n_clusters = len(rows)
        groups = {r[3] for r in rows if r[3] is not None}
        assert n_clusters == len(FAMILIES) and len(groups) >= 1  # 5 clusters, 2 lazy labels
        assert state.chat_calls == n_clusters + len(groups)  # N first labels + G relabels
        relabel_prompts = [r["messages"][-1]["content"] for r in state.requests[n_clusters:]]
        assert all("## Group 2 (current label: " in p for p in relabel_prompts)
        # a relabel is used when distinct; when it collides (e.g. with another group's
        # relabel: each group is asked alone), keywords are appended to the first label
        outcomes = {(r[4], r[5]) for r in rows if r[3] is not None}
        assert ("llm_relabel", "ok") in outcomes
        assert outcomes <= {("llm_relabel", "ok"), ("keywords", "collided")}
        for _, label, first_labels, _, distinct_by, _ in rows:
            if distinct_by == "keywords":
                assert label.startswith(f"{first_labels[0]} (") and label.endswith(")")
        assert_distinct([r[1] for r in rows])
        assert "collision group relabel(s)" in first.stdout + first.stderr

        # unchanged input: nothing is asked again, and the labels stay
        ok(run_dbt(tmp_path, database, "build", vars=variables, env=env))
        assert state.chat_calls == n_clusters + len(groups)
        assert final_labels(database) == rows


def test_relabel_replies_that_never_fit_the_schema_cost_no_call_on_a_rebuild(corpus, tmp_path):
    # a server that answers every relabel prompt with a plain {"labels": [...]}: the reply is
    # invalid for the relabel schema, cached as failed, and not asked again by an unchanged
    # build (it used to cost every rebuild groups x attempts calls)
    database = tmp_path / "flat.duckdb"
    variables = {"source_path": str(corpus), "llm_model": "flat-model", **VARS}
    with serve(default="flat") as (url, state):
        env = {"OPENAI_BASE_URL": url}
        ok(run_dbt(tmp_path, database, "build", vars=variables, env=env))
        rows = final_labels(database)
        grouped = [r for r in rows if r[3] is not None]
        assert grouped and {(r[4], r[5]) for r in grouped} == {("keywords", "failed")}
        failed = query(
            database,
            "select status, error_kind, attempts from int_llm_replies where kind = 'relabel'",
        )
        assert failed and {r[:2] for r in failed} == {("failed", "reply")}
        assert all(r[2] == 4 for r in failed)  # var llm_max_attempts, then cached
        assert_distinct([r[1] for r in rows])

        calls = state.chat_calls
        ok(run_dbt(tmp_path, database, "build", vars=variables, env=env))
        assert state.chat_calls == calls  # unchanged input: 0 calls
        assert final_labels(database) == rows

        ok(
            run_dbt(
                tmp_path, database, "build", vars={**variables, "llm_retry_failed": True}, env=env
            )
        )
        assert state.chat_calls == calls + len(failed) * 4  # asked again, on request
