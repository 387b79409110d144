"""Stable cluster ids across a refit, end to end: a build, then 30 % new texts (past
refit_new_share, so the clusters are fitted again). Clusters that continue an old one keep
its id; those whose representatives barely moved keep their prompt and labels, asked of the
LLM again by no call; fct_cluster_lineage explains every cluster; no id is reused (the dbt
test assert_cluster_ids_are_never_reused runs in the build)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from conftest import REPO
from dbt_helpers import ok, query, run_dbt
from fake_openai import serve


def test_a_refit_keeps_ids_labels_and_prompts_of_the_clusters_it_continues(tmp_path):
    demo = pq.read_table(REPO / "data" / "debian_packages.parquet").slice(0, 600)
    source = tmp_path / "texts.parquet"
    database = tmp_path / "stable.duckdb"
    variables = {"source_path": str(source), "id_column": "package", "savefig": False}
    prompts = "select cluster_label, request_hash, user_prompt from int_cluster_prompts"
    labels = (
        "select cluster_label, (summary_label, first_labels, collision_group) "
        "from int_clusters_labelled where cluster_label <> -1"
    )
    topics = "select topic_key, request_hash, user_prompt, summary_labels from int_topics_named"
    with serve() as (url, state):
        env = {"OPENAI_BASE_URL": url}
        pq.write_table(demo.slice(0, 460), source)
        ok(run_dbt(tmp_path, database, "build", vars=variables, env=env))
        before = {c: (h, p) for c, h, p in query(database, prompts)}
        labels_before = dict(query(database, labels))
        topics_before = {k: (h, p, n) for k, h, p, n in query(database, topics)}
        asked_before = len(state.requests)
        pq.write_table(demo, source)  # 140 new texts: 30 %
        result = ok(run_dbt(tmp_path, database, "build", vars=variables, env=env))
        sent = [r["messages"][-1]["content"] for r in state.requests[asked_before:]]
    assert "refit matched to the previous build" in result.stdout + result.stderr
    after = {c: (h, p) for c, h, p in query(database, prompts)}
    labels_after = dict(query(database, labels))
    kept = [c for c in after if c in before and after[c][0] == before[c][0]]
    assert kept  # clusters that kept their id and their prompt ...
    for c in kept:
        assert after[c][1] not in sent  # ... cost no call: the reply cache answers them
        label, first, collision = labels_after[c]
        old_label, old_first, old_collision = labels_before[c]
        assert first == old_first  # the LLM's labels, from the cache
        if collision is None and old_collision is None:  # and the final label, unless it
            assert label == old_label  # collides with another's (a suffix), now or before
    changed = [c for c in after if c not in kept]
    assert all(any(after[c][1] == p for p in sent) for c in changed)  # the others are asked
    # topics too: a family of topics that kept their ids and barely moved keeps its prompt,
    # its names come from the cache, no call; every other family is asked
    topics_after = {k: (h, p, n) for k, h, p, n in query(database, topics)}
    kept_topics = [
        k
        for k, (h, _, _) in topics_after.items()
        if k in topics_before and topics_before[k][0] == h and h is not None
    ]
    for k in kept_topics:
        assert topics_after[k][1] not in sent
        assert topics_after[k][2] == topics_before[k][2]
    asked_topics = [k for k, (h, p, _) in topics_after.items() if h and k not in kept_topics]
    assert all(topics_after[k][1] in sent for k in asked_topics)
    print(json.dumps({"kept_topics": kept_topics, "asked_topics": asked_topics}))
    # every cluster of the refit is explained by the lineage, and fresh ids are new
    lineage = query(
        database,
        "select old_cluster, new_cluster, change, is_new_id from fct_cluster_lineage "
        "where recorded_at = (select max(recorded_at) from fct_cluster_lineage)",
    )
    assert {new for _, new, _, _ in lineage if new is not None} == set(labels_after)
    fresh = {new for _, new, _, is_new in lineage if is_new}
    assert not fresh & set(labels_before)
    assert {change for _, _, change, _ in lineage} >= {"survived"}
    print(json.dumps({"kept": len(kept), "changed": len(changed), "fresh": len(fresh)}))
