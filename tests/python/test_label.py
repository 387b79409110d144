import time

import openai
import pyarrow as pa
import pytest
from fake_openai import MODEL_REPORTED

from text_clustering import (
    KEYWORD_MODEL_NAME,
    LLMLabeller,
    LLMSettings,
    distinct_labels_table,
    keywords_table,
    labels_collide,
    make_distinct,
    prompts_table,
    relabel_prompts_table,
    relabels_table,
    responses_table,
)
from text_clustering.label import DistinctLabels

DOCUMENTS = pa.table(
    {
        "cluster_label": [0, 0, 1, 1, -1],
        "text": [
            "vim editor modal editor",
            "emacs editor",
            "chess game board",
            "board game dice",
            "random noise words",
        ],
    }
)
REPRESENTATIVES = pa.table(
    {
        "cluster_label": [0, 0, 1],
        "representative_rank": [2, 1, 1],
        "text": ["emacs editor", "vim editor modal editor", "chess chess board"],
    }
)
SETTINGS = LLMSettings(model="asked-model")


def rows(table, key="cluster_label"):
    return {r[key]: r for r in table.to_pylist()}


def test_keywords_table_has_every_cluster_and_noise():
    out = rows(keywords_table(DOCUMENTS, n=1, default_label="Other"))
    assert sorted(out) == [-1, 0, 1]
    assert out[0]["keyword_labels"] == ["editor, emacs, modal"]
    assert out[1]["top_keywords"][:2] == ["board", "game"]


def test_keywords_table_keeps_a_noise_row_without_noise_and_gapped_ids():
    gapped = pa.table({"cluster_label": [3, 3, 9], "text": ["a cat", "a cat", "dog"]})
    out = rows(keywords_table(gapped, n=2, default_label="Other"))
    assert sorted(out) == [-1, 3, 9]
    assert (
        out[-1]["keyword_labels"] == ["Other", "Other"] and out[9]["keyword_labels"][1] == "Other"
    )


def test_prompts_show_each_clusters_representatives_in_rank_order():
    out = rows(prompts_table(REPRESENTATIVES, SETTINGS, llm_enabled=True))
    assert sorted(out) == [0, 1]
    assert "1. vim editor modal editor\n2. emacs editor" in out[0]["user_prompt"]
    assert out[0]["n_examples"] == 2 and out[0]["labeller"] == "llm"
    assert out[0]["request_hash"] != out[1]["request_hash"]
    offline = rows(prompts_table(REPRESENTATIVES, SETTINGS, llm_enabled=False))
    assert offline[0]["labeller"] == KEYWORD_MODEL_NAME
    assert offline[0]["request_hash"] == out[0]["request_hash"]


def tool(url, **kwargs):
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    return LLMLabeller(client=client, settings=SETTINGS, sleep=lambda s: None, **kwargs)


def test_responses_ask_only_what_the_cache_lacks(llm_server):
    url, state = llm_server
    prompts = prompts_table(REPRESENTATIVES, SETTINGS, llm_enabled=True)
    first = rows(responses_table(prompts, set(), tool(url), max_concurrency=2), "request_hash")
    assert state.chat_calls == 2
    by_cluster = {r["cluster_label"]: first[r["request_hash"]] for r in prompts.to_pylist()}
    assert by_cluster[0]["labels"] == ["editor texts"] and by_cluster[1]["labels"] == [
        "chess texts"
    ]
    assert by_cluster[0]["model_name"] == MODEL_REPORTED and by_cluster[0]["status"] == "ok"
    again = responses_table(prompts, set(first), tool(url))
    assert again.num_rows == 0 and state.chat_calls == 2  # all cached: no call


def test_failed_requests_are_recorded_and_asked_again_next_time(llm_server):
    url, state = llm_server
    prompts = prompts_table(REPRESENTATIVES, SETTINGS, llm_enabled=True)
    state.default = "malformed"
    failed = responses_table(prompts, set(), tool(url, max_attempts=2))
    assert failed["status"].to_pylist() == ["failed", "failed"]
    assert all("malformed JSON" in e for e in failed["error"].to_pylist())
    assert all(r is not None for r in failed["raw_reply"].to_pylist())
    state.default = "ok"
    retried = responses_table(prompts, set(), tool(url))  # failed rows are not "answered"
    assert retried["status"].to_pylist() == ["ok", "ok"]


def test_no_llm_and_dry_run_ask_nothing(llm_server, capsys):
    _, state = llm_server
    prompts = prompts_table(REPRESENTATIVES, SETTINGS, llm_enabled=False)
    assert responses_table(prompts, set(), None).num_rows == 0
    assert "no LLM configured" in capsys.readouterr().err
    plan = responses_table(prompts, {prompts["request_hash"][0].as_py()}, None, dry_run=True)
    assert plan.num_rows == 0 and state.calls == 0
    err = capsys.readouterr().err
    assert "2 cluster prompt(s), 1 answered by the cache, 1 to ask" in err and "dry run" in err


def test_time_budget_skips_what_it_cannot_ask(llm_server):
    url, state = llm_server
    state.script, state.slow_seconds = ["slow"], 1.5
    prompts = prompts_table(REPRESENTATIVES, SETTINGS, llm_enabled=True)
    start = time.monotonic()
    out = responses_table(prompts, set(), tool(url, timeout=5), max_concurrency=1, time_budget=1.0)
    assert time.monotonic() - start < 4
    assert set(out["status"].to_pylist()) <= {"failed", "skipped"} and out.num_rows == 2


# --- distinct labels -------------------------------------------------------------------

KEYWORDS = {0: ["vim", "modal"], 1: ["emacs", "lisp"], 2: ["chess", "board"], 3: ["nano"]}


def test_make_distinct_takes_a_relabel_that_is_distinct():
    first = {0: ["Text editors"], 1: ["text editor"], 2: ["Chess"]}
    out = make_distinct(first, KEYWORDS, relabels={0: ["Modal editors"], 1: ["Lisp editors"]})
    assert out[0] == DistinctLabels(["Modal editors"], 0, "llm_relabel")
    assert out[1] == DistinctLabels(["Lisp editors"], 0, "llm_relabel")
    assert out[2] == DistinctLabels(["Chess"])


@pytest.mark.parametrize(
    "relabels",
    [
        {0: ["Editors"], 1: ["editor"]},  # the relabel collides within the group
        {0: ["Chess"], 1: ["Lisp editors"]},  # ... or with another cluster
        {0: ["Modal editors"]},  # a sibling has none (failed, skipped, not asked)
        {},
    ],
)
def test_make_distinct_falls_back_to_keywords_appended_to_the_first_label(relabels):
    first = {0: ["Text editors"], 1: ["text editor"], 2: ["Chess"]}
    out = make_distinct(first, KEYWORDS, relabels=relabels, style="parenthesis")
    assert out[0] == DistinctLabels(["Text editors (vim)"], 0, "keywords", ("vim",))
    assert out[1] == DistinctLabels(["text editor (emacs)"], 0, "keywords", ("emacs",))
    assert out[2] == DistinctLabels(["Chess"])


def test_make_distinct_numbers_what_nothing_else_tells_apart():
    first = {0: ["Editors"], 1: ["Editors"], 4: ["Editors"]}
    out = make_distinct(first, {0: [], 1: [], 4: ["vim"]})
    assert out[4].labels == ["Editors, vim"] and out[4].distinct_by == "keywords"
    assert out[0].labels == ["Editors (cluster 0)"] and out[0].distinct_by == "cluster_number"
    assert out[1].labels == ["Editors (cluster 1)"]
    labels = [r.labels[0] for r in out.values()]
    assert not any(labels_collide(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])


def test_make_distinct_compares_and_changes_only_the_first_of_n_labels():
    first = {0: ["Editors", "Vim"], 1: ["editors", "Vim"], 2: ["Games", "Editors"]}
    out = make_distinct(first, KEYWORDS, style="parenthesis")
    assert out[0].labels == ["Editors (vim)", "Vim"] and out[1].labels == ["editors (emacs)", "Vim"]
    assert out[2] == DistinctLabels(["Games", "Editors"])
    relabelled = make_distinct(first, KEYWORDS, relabels={0: ["A", "B"], 1: ["C"]})
    assert relabelled[0].distinct_by == "keywords"  # a relabel with too few labels is unused


CLUSTERS = pa.table(
    {
        "cluster_label": [0, 0, 1, 1, 2, 2, 3, 3],
        "representative_rank": [1, 2, 1, 2, 1, 2, 1, 2],
        "text": [
            "vim modal editor",
            "vim plugins",
            "emacs lisp editor",
            "emacs org mode",
            "chess engine board",
            "chess openings",
            "nano simple editor",
            "nano terminal",
        ],
    }
)
CLUSTER_KEYWORDS = pa.table(
    {
        "cluster_label": [-1, 0, 1, 2, 3],
        "top_keywords": [[], ["vim", "modal"], ["emacs", "lisp"], ["chess", "board"], ["nano"]],
        "keyword_labels": [["U"], ["editor, vim"], ["editor, emacs"], ["chess"], ["nano"]],
    }
)


def first_pass(url, state, behaviour):
    """The first labelling by the fake server told to give lazy, colliding labels."""
    state.default = behaviour
    prompts = prompts_table(CLUSTERS, SETTINGS, llm_enabled=True)
    return prompts, responses_table(prompts, set(), tool(url))


def test_colliding_llm_labels_are_relabelled_together_once_per_group(llm_server):
    url, state = llm_server
    prompts, responses = first_pass(url, state, "collide")
    first = {r["request_hash"]: r["labels"][0] for r in responses.to_pylist()}
    assert state.chat_calls == 4 and len({first[h] for h in first}) < 4  # they collide
    relabel = relabel_prompts_table(prompts, responses, CLUSTERS)
    groups = {}
    for row in relabel.to_pylist():
        groups.setdefault(row["collision_group"], []).append(row["cluster_label"])
        assert row["user_prompt"].count("## Group ") == row["n_siblings"]
        assert f"current label: {row['first_labels'][0]}" in row["user_prompt"]
    assert len(groups) >= 1 and all(len(g) >= 2 for g in groups.values())
    answers = relabels_table(relabel, set(), tool(url))
    assert state.chat_calls == 4 + len(groups) and answers.num_rows == len(groups)
    assert set(answers["status"].to_pylist()) == {"ok"}
    assert (
        relabels_table(relabel, set(answers["request_hash"].to_pylist()), tool(url)).num_rows == 0
    )
    assert state.chat_calls == 4 + len(groups)  # cached: no call

    out = rows(distinct_labels_table(CLUSTER_KEYWORDS, prompts, responses, relabel, answers))
    assert sorted(out) == [0, 1, 2, 3]
    relabelled = [c for g in groups.values() for c in g]
    assert all(out[c]["distinct_by"] == "llm_relabel" for c in relabelled)
    assert all(out[c]["relabel_status"] == "ok" for c in relabelled)
    labels = [r["summary_labels"][0] for r in out.values()]
    assert not any(labels_collide(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])


def test_a_relabel_that_still_collides_falls_back_to_keywords(llm_server):
    url, state = llm_server
    prompts, responses = first_pass(url, state, "stubborn")
    relabel = relabel_prompts_table(prompts, responses, CLUSTERS)
    answers = relabels_table(relabel, set(), tool(url))
    out = rows(distinct_labels_table(CLUSTER_KEYWORDS, prompts, responses, relabel, answers))
    relabelled = [r for r in out.values() if r["collision_group"] is not None]
    assert relabelled and all(r["relabel_status"] == "collided" for r in relabelled)
    assert all(r["distinct_by"] == "keywords" for r in relabelled)
    for r in relabelled:  # e.g. "Software tools (vim)"
        assert r["summary_labels"][0] == f"{r['first_labels'][0]} ({r['added_terms'][0]})"
    labels = [r["summary_labels"][0] for r in out.values()]
    assert not any(labels_collide(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])


def test_a_failed_or_unasked_relabel_falls_back_to_keywords(llm_server):
    url, state = llm_server
    prompts, responses = first_pass(url, state, "collide")
    relabel = relabel_prompts_table(prompts, responses, CLUSTERS)
    state.default = "401"
    failed = relabels_table(relabel, set(), tool(url))
    out = rows(distinct_labels_table(CLUSTER_KEYWORDS, prompts, responses, relabel, failed))
    grouped = [r for r in out.values() if r["collision_group"] is not None]
    assert {r["relabel_status"] for r in grouped} == {"failed"}
    assert {r["distinct_by"] for r in grouped} == {"keywords"}
    planned = relabels_table(relabel, set(), None, dry_run=True)
    out = rows(distinct_labels_table(CLUSTER_KEYWORDS, prompts, responses, relabel, planned))
    assert {out[c]["relabel_status"] for c in relabel["cluster_label"].to_pylist()} == {"not_asked"}


def test_offline_there_is_nothing_to_relabel_and_keyword_labels_are_made_distinct(llm_server):
    _, state = llm_server
    prompts = prompts_table(CLUSTERS, SETTINGS, llm_enabled=False)
    responses = responses_table(prompts, set(), None)
    relabel = relabel_prompts_table(prompts, responses, CLUSTERS)
    assert relabel.num_rows == 0
    answers = relabels_table(relabel, set(), None)
    keywords = CLUSTER_KEYWORDS.set_column(
        2, "keyword_labels", pa.array([["U"], ["editor"], ["editors"], ["chess"], ["nano"]])
    )
    out = rows(distinct_labels_table(keywords, prompts, responses, relabel, answers))
    assert out[0]["summary_labels"] == ["editor, vim"] and out[0]["added_terms"] == ["vim"]
    assert out[1]["summary_labels"] == ["editors, emacs"] and out[1]["distinct_by"] == "keywords"
    assert out[2]["distinct_by"] is None and out[2]["relabel_status"] is None
    assert state.calls == 0
