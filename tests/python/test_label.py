import time

import openai
import pyarrow as pa
from fake_openai import MODEL_REPORTED

from text_clustering import (
    KEYWORD_MODEL_NAME,
    LLMLabeller,
    LLMSettings,
    keywords_table,
    prompts_table,
    responses_table,
)

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
