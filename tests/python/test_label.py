import pyarrow as pa
from fake_openai import MODEL_REPORTED

from text_clustering import KEYWORD_MODEL_NAME, LLMLabeller, label_clusters

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


def rows(table):
    return {r["cluster_label"]: r for r in table.to_pylist()}


def test_offline_labels_come_from_keywords_and_noise_gets_the_default(no_llm_env):
    out = rows(label_clusters(DOCUMENTS, REPRESENTATIVES, n=1, default_label="Other"))
    assert sorted(out) == [-1, 0, 1]
    assert out[0]["summary_label"] == "editor, emacs, modal"
    assert out[0]["model_name"] == KEYWORD_MODEL_NAME and out[0]["label_status"] == "ok"
    assert out[1]["top_keywords"][:2] == ["board", "game"]
    assert out[-1]["summary_labels"] == ["Other"] and out[-1]["model_name"] == "default_label"


def test_n_labels_are_joined_as_plain_text():
    out = rows(label_clusters(DOCUMENTS, REPRESENTATIVES, n=2, default_label="Other"))
    assert len(out[0]["summary_labels"]) == 2
    assert out[0]["summary_label"] == "; ".join(out[0]["summary_labels"])
    assert out[-1]["summary_label"] == "Other; Other"


def test_no_clusters_at_all_still_gives_the_noise_row():
    only_noise = pa.table({"cluster_label": [-1, -1], "text": ["a b", "c d"]})
    empty = REPRESENTATIVES.slice(0, 0)
    out = label_clusters(only_noise, empty, n=1, default_label="Other")
    assert out["cluster_label"].to_pylist() == [-1]


def test_gapped_cluster_ids_are_kept():
    gapped = DOCUMENTS.set_column(0, "cluster_label", pa.array([3, 3, 9, 9, -1]))
    out = label_clusters(gapped, REPRESENTATIVES.slice(0, 0), n=1)
    assert out["cluster_label"].to_pylist() == [-1, 3, 9]


def test_llm_labels_use_each_clusters_own_representatives(llm_server):
    import openai

    url, state = llm_server
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    out = rows(
        label_clusters(
            DOCUMENTS,
            REPRESENTATIVES,
            n=1,
            labeller=LLMLabeller(client=client, model="asked-model"),
            max_concurrency=2,
        )
    )
    assert out[0]["summary_label"] == "editor texts"
    assert out[1]["summary_label"] == "chess texts"
    assert out[0]["model_name"] == MODEL_REPORTED
    assert state.calls == 2  # one per cluster, none for noise
    prompts = sorted(r["messages"][-1]["content"] for r in state.requests)
    assert "1. chess chess board" in prompts[0]
    assert "1. vim editor modal editor\n2. emacs editor" in prompts[1]  # rank order


def test_llm_failures_get_the_default_label_and_the_reason(llm_server):
    import openai

    url, state = llm_server
    state.malformed = True
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    tool = LLMLabeller(client=client, model="asked-model", max_attempts=1)
    out = rows(
        label_clusters(DOCUMENTS, REPRESENTATIVES, n=1, default_label="Other", labeller=tool)
    )
    assert out[0]["summary_label"] == "Other" and out[0]["label_status"] == "failed"
    assert "invalid reply" in out[0]["label_error"]
