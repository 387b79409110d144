"""The labelling steps, driven as dbt drives them: DuckDB relations in, tables out, the LLM
reply cache kept as an incremental table between "builds" (see :class:`Warehouse`)."""

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fake_openai import MODEL_REPORTED

from text_clustering import (
    KEYWORD_MODEL_NAME,
    ask_llm,
    cluster_prompts,
    labels_collide,
    make_distinct,
    name_clusters,
    topic_keywords,
)
from text_clustering.naming import DistinctLabels

REPRESENTATIVES = pa.table(
    {
        "cluster_label": [0, 0, 1],
        "representative_rank": [2, 1, 1],
        "text_id": ["emacs", "vim", "chess"],
        "text": ["emacs editor", "vim editor modal editor", "chess chess board"],
    }
)
LLM_CONFIG = {
    "llm_model": "asked-model",
    "n": 1,
    "default_label": "Unclassified",
    "input_batch_size": 2,
    "llm_timeout": 5,
    "llm_max_attempts": 1,
    "llm_time_budget": 60,
    "llm_dry_run": False,
    "llm_retry_failed": False,
}


class Warehouse:
    """An in-memory DuckDB with the tables a labelling step reads, and the reply cache
    appended like dbt's incremental model (delete+insert on request_hash)."""

    def __init__(self, representatives: pa.Table, config=None, keywords=None) -> None:
        self.con = duckdb.connect()
        self.config = {**LLM_CONFIG, **(config or {})}
        self.put("representatives", representatives)
        prompts = cluster_prompts(self.con, "none_yet", self.rel("representatives"), self.config)
        self.put("prompts", prompts)
        clusters = sorted({-1, *representatives["cluster_label"].to_pylist()})
        self.put("keywords", keywords or plain_keywords(clusters))
        # one level (no topics above the clusters): a tree of level 0 only
        self.put(
            "tree",
            pa.table(
                {
                    "level": pa.array([0] * len(clusters), pa.int32()),
                    "topic_id": pa.array(clusters, pa.int32()),
                    "parent_topic_id": pa.array([None] * len(clusters), pa.int32()),
                    "n_fit_texts": pa.array([1] * len(clusters), pa.int64()),
                }
            ),
        )
        empty = {"level": pa.array([], pa.int32()), "topic_id": pa.array([], pa.int32())}
        self.put(
            "topic_keywords",
            pa.table(
                {
                    **empty,
                    "top_keywords": pa.array([], pa.list_(pa.string())),
                    "keyword_labels": pa.array([], pa.list_(pa.string())),
                }
            ),
        )
        self.put(
            "topic_representatives",
            pa.table(
                {
                    "level": pa.array([], pa.int32()),
                    "topic_id": pa.array([], pa.int32()),
                    "representative_rank": pa.array([], pa.int64()),
                    "text_id": pa.array([], pa.string()),
                    "text": pa.array([], pa.string()),
                }
            ),
        )

    def put(self, name: str, table: pa.Table) -> None:
        self.con.register("incoming", table)
        self.con.execute(f"create or replace table {name} as select * from incoming")
        self.con.unregister("incoming")

    def rel(self, name: str):
        return self.con.sql(f"select * from {name}")

    def exists(self, name: str) -> bool:
        found = self.con.sql(f"select count(*) from duckdb_tables() where table_name = '{name}'")
        return found.fetchall()[0][0] > 0

    def ask(self, **config) -> pa.Table:
        """One build of int_llm_replies: the rows it adds, merged into the cache."""
        this = "replies" if self.exists("replies") else None
        new = ask_llm(
            self.con,
            this,
            self.rel("prompts"),
            self.rel("keywords"),
            self.rel("representatives"),
            self.rel("tree"),
            self.rel("topic_keywords"),
            self.rel("topic_representatives"),
            {**self.config, **config},
        )
        if this is None:
            self.put("replies", new)
        elif new.num_rows:
            self.con.register("incoming", new)
            self.con.execute(
                "delete from replies where request_hash in (select request_hash from incoming)"
            )
            self.con.execute("insert into replies select * from incoming")
            self.con.unregister("incoming")
        return new

    def names(self, keywords: pa.Table | None = None) -> dict:
        if keywords is not None:
            self.put("keywords", keywords)
        if not self.exists("replies"):
            self.ask()
        table = name_clusters(
            self.rel("keywords"),
            self.rel("prompts"),
            self.rel("replies"),
            self.rel("representatives"),
            self.config,
        )
        return rows(table)


def plain_keywords(clusters: list[int]) -> pa.Table:
    """int_cluster_keywords rows whose keywords say nothing: "kw<id>"."""
    return pa.table(
        {
            "cluster_label": pa.array(clusters, pa.int32()),
            "top_keywords": [[f"kw{c}"] for c in clusters],
            "keyword_labels": [[f"kw{c}"] for c in clusters],
        }
    )


def rows(table, key="cluster_label"):
    return {r[key]: r for r in table.to_pylist()}


@pytest.fixture
def online(llm_server, monkeypatch):
    url, state = llm_server
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return state


def flat_tree(clusters: list[int]) -> pa.Table:
    """int_topic_tree rows of a hierarchy of level 0 only (the clusters and noise)."""
    ids = sorted({-1, *clusters})
    return pa.table(
        {
            "topic_key": [f"0:{c}" for c in ids],
            "level": pa.array([0] * len(ids), pa.int32()),
            "topic_id": pa.array(ids, pa.int32()),
            "parent_topic_id": pa.array([None] * len(ids), pa.int32()),
        }
    )


def cluster_keywords(con, clustered, projected, texts, config):
    """int_cluster_keywords as dbt makes it: level 0 of int_topic_keywords."""
    labels = con.execute("select distinct cluster_label from clustered").fetchall()
    con.register("tree", flat_tree([c for (c,) in labels if c >= 0]))
    out = topic_keywords(
        con, "t", clustered, projected, texts, con.sql("select * from tree"), config
    )
    return rows(out.filter(pc.equal(out["level"], 0)), key="topic_id")


def test_keywords_have_every_cluster_and_noise():
    con = duckdb.connect()
    texts = ["vim editor modal editor", "emacs editor", "chess game board", "board game dice"]
    con.register("stg", pa.table({"text_id": list("abcde"), "text": [*texts, "random noise"]}))
    con.register(
        "clustered", pa.table({"text_id": list("abcde"), "cluster_label": [0, 0, 1, 1, -1]})
    )
    con.register(
        "projected", pa.table({"text_id": list("abcde"), "projection_source": ["fit"] * 5})
    )
    config = {"n": 1, "default_label": "Other"}
    args = (con.sql("select * from clustered"), con.sql("select * from projected"))
    out = cluster_keywords(con, *args, con.sql("select * from stg"), config)
    assert sorted(out) == [-1, 0, 1]
    assert out[0]["keyword_labels"] == ["editor, emacs, modal"]
    assert out[1]["top_keywords"][:2] == ["board", "game"]
    # a noise row even without noise texts, gapped ids, n labels padded with the default
    con.register("clustered", pa.table({"text_id": list("abc"), "cluster_label": [3, 3, 9]}))
    out = cluster_keywords(
        con,
        con.sql("select * from clustered"),
        args[1],
        con.sql("select * from stg"),
        {**config, "n": 2},
    )
    assert sorted(out) == [-1, 3, 9] and out[-1]["keyword_labels"] == ["Other", "Other"]
    assert len(out[3]["keyword_labels"]) == 2


def test_a_prompt_is_kept_while_its_representatives_barely_move():
    place = Warehouse(REPRESENTATIVES)
    first = rows(place.rel("prompts").arrow().read_all())
    assert first[0]["representative_ids"] == ["vim", "emacs"]
    # cluster 0 gets a new second representative (1 of 2 shown kept: still >= half), and
    # cluster 1's only one is replaced: 0 prompt changes for 0, a new prompt for 1
    moved = pa.table(
        {
            "cluster_label": [0, 0, 1],
            "representative_rank": [1, 2, 1],
            "text_id": ["vim", "nano", "go"],
            "text": ["vim editor modal editor", "nano editor", "go board game stones"],
        }
    )
    place.put("representatives", moved)
    again = rows(cluster_prompts(place.con, "prompts", place.rel("representatives"), place.config))
    assert again[0] == first[0]  # the same request: the reply cache answers it
    assert again[1]["request_hash"] != first[1]["request_hash"]
    assert again[1]["representative_ids"] == ["go"]
    # other settings: every prompt is made again
    other = cluster_prompts(
        place.con, "prompts", place.rel("representatives"), {**place.config, "n": 2}
    )
    assert rows(other)[0]["request_hash"] != first[0]["request_hash"]


def test_prompts_show_each_clusters_representatives_in_rank_order():
    out = rows(Warehouse(REPRESENTATIVES).rel("prompts").arrow().read_all())
    assert sorted(out) == [0, 1]
    assert "1. vim editor modal editor\n2. emacs editor" in out[0]["user_prompt"]
    assert out[0]["n_examples"] == 2 and out[0]["request_hash"] != out[1]["request_hash"]


def test_replies_ask_only_what_the_cache_lacks(online):
    place = Warehouse(REPRESENTATIVES)
    first = rows(place.ask(), "request_hash")
    assert online.chat_calls == 2 and {r["kind"] for r in first.values()} == {"cluster"}
    prompts = place.rel("prompts").arrow().read_all().to_pylist()
    by_cluster = {r["cluster_label"]: first[r["request_hash"]] for r in prompts}
    assert by_cluster[0]["labels"] == [["editor texts"]]
    assert by_cluster[1]["labels"] == [["chess texts"]]
    assert by_cluster[0]["model_name"] == MODEL_REPORTED and by_cluster[0]["status"] == "ok"
    assert place.ask().num_rows == 0 and online.chat_calls == 2  # all cached: no call


def test_transport_failures_are_asked_again_next_build(online):
    place = Warehouse(REPRESENTATIVES)
    online.default = "500"
    failed = place.ask()
    assert failed["status"].to_pylist() == ["failed", "failed"]
    assert set(failed["error_kind"].to_pylist()) == {"transport"}
    online.default = "ok"
    retried = place.ask()
    assert retried["status"].to_pylist() == ["ok", "ok"] and online.chat_calls == 4


def test_invalid_replies_are_cached_as_failed_until_llm_retry_failed(online):
    place = Warehouse(REPRESENTATIVES)
    online.default = "malformed"
    failed = place.ask()
    assert failed["status"].to_pylist() == ["failed", "failed"]
    assert set(failed["error_kind"].to_pylist()) == {"reply"}
    assert all("malformed JSON" in e for e in failed["error"].to_pylist())
    assert all(r is not None for r in failed["raw_reply"].to_pylist())
    online.default = "ok"
    assert place.ask().num_rows == 0 and online.chat_calls == 2  # a final answer: not asked
    retried = place.ask(llm_retry_failed=True)
    assert retried["status"].to_pylist() == ["ok", "ok"] and online.chat_calls == 4


def test_no_llm_and_dry_run_ask_nothing(llm_server, capsys, no_llm_env):
    _, state = llm_server
    place = Warehouse(REPRESENTATIVES)
    assert place.ask().num_rows == 0
    assert "no LLM configured" in capsys.readouterr().err
    plan = place.ask(llm_dry_run=True)
    assert plan.num_rows == 0 and state.calls == 0
    err = capsys.readouterr().err
    assert "2 cluster prompt(s), 0 answered by the cache, 2 to ask" in err and "dry run" in err


def test_time_budget_skips_what_it_cannot_ask(online):
    import time

    online.script, online.slow_seconds = ["slow"], 1.5
    place = Warehouse(REPRESENTATIVES, {"input_batch_size": 1, "llm_time_budget": 1})
    start = time.monotonic()
    out = place.ask()
    assert time.monotonic() - start < 4
    assert set(out["status"].to_pylist()) <= {"failed", "skipped"} and out.num_rows == 2
    assert set(out["error_kind"].to_pylist()) == {"transport"}  # asked again next build


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
        "text_id": [f"t{i}" for i in range(8)],
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


def first_pass(online, behaviour):
    """A warehouse whose first labelling by the fake server gives lazy, colliding labels."""
    online.default = behaviour
    place = Warehouse(CLUSTERS, keywords=CLUSTER_KEYWORDS)
    place.ask()
    return place


def test_colliding_llm_labels_are_relabelled_together_once_per_group(online):
    place = first_pass(online, "collide")
    replies = place.rel("replies").arrow().read_all().to_pylist()
    first = [r["labels"][0][0] for r in replies if r["kind"] == "cluster"]
    relabels = [r for r in replies if r["kind"] == "relabel"]
    assert len(first) == 4 and len(set(first)) < 4  # they collided
    assert relabels and {r["status"] for r in relabels} == {"ok"}
    assert online.label_calls == 4 and online.relabel_calls == len(relabels)
    for r in relabels:
        assert r["user_prompt"].count("## Group ") == r["n_groups"] == len(r["labels"])
    assert place.ask().num_rows == 0  # cached: no call
    assert online.chat_calls == 4 + len(relabels)
    out = place.names(CLUSTER_KEYWORDS)
    assert sorted(out) == [-1, 0, 1, 2, 3]
    grouped = [r for r in out.values() if r["collision_group"] is not None]
    assert grouped and all(r["distinct_by"] == "llm_relabel" for r in grouped)
    assert all(r["relabel_status"] == "ok" and r["label_source"] == "llm" for r in grouped)
    labels = [r["summary_labels"][0] for c, r in out.items() if c != -1]
    assert not any(labels_collide(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])


def test_relabel_replies_that_never_fit_the_schema_are_not_asked_again(online):
    place = first_pass(online, "flat")  # relabel prompts answered without the group schema
    replies = place.rel("replies").arrow().read_all().to_pylist()
    relabels = [r for r in replies if r["kind"] == "relabel"]
    assert relabels and {(r["status"], r["error_kind"]) for r in relabels} == {("failed", "reply")}
    calls = online.chat_calls
    assert place.ask().num_rows == 0 and online.chat_calls == calls  # unchanged build: 0 calls
    out = place.names(CLUSTER_KEYWORDS)
    grouped = [r for r in out.values() if r["collision_group"] is not None]
    assert {(r["relabel_status"], r["distinct_by"]) for r in grouped} == {("failed", "keywords")}


def test_a_relabel_that_still_collides_falls_back_to_keywords(online):
    out = first_pass(online, "stubborn").names(CLUSTER_KEYWORDS)
    relabelled = [r for r in out.values() if r["collision_group"] is not None]
    assert relabelled and all(r["relabel_status"] == "collided" for r in relabelled)
    assert all(r["distinct_by"] == "keywords" for r in relabelled)
    for r in relabelled:  # e.g. "Software tools (vim)"
        assert r["summary_labels"][0] == f"{r['first_labels'][0]} ({r['added_terms'][0]})"
    labels = [r["summary_labels"][0] for c, r in out.items() if c != -1]
    assert not any(labels_collide(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :])


def test_a_failed_or_unasked_relabel_falls_back_to_keywords(online):
    place = Warehouse(CLUSTERS, keywords=CLUSTER_KEYWORDS)
    online.script = ["collide"] * 4  # the cluster prompts; every relabel then fails
    online.default = "401"
    place.ask()
    out = place.names(CLUSTER_KEYWORDS)
    grouped = [r for r in out.values() if r["collision_group"] is not None]
    assert grouped and {r["relabel_status"] for r in grouped} == {"failed"}
    assert {r["distinct_by"] for r in grouped} == {"keywords"}
    place.con.execute("delete from replies where kind = 'relabel'")  # e.g. a dry run
    out = place.names(CLUSTER_KEYWORDS)
    assert {out[r["cluster_label"]]["relabel_status"] for r in grouped} == {"not_asked"}


def test_labels_the_llm_did_not_give_are_the_default_with_the_reason(online):
    place = Warehouse(CLUSTERS, keywords=CLUSTER_KEYWORDS)
    online.default = "malformed"
    place.ask()
    out = place.names(CLUSTER_KEYWORDS)
    assert {out[c]["label_source"] for c in range(4)} == {"default"}
    assert {out[c]["label_status"] for c in range(4)} == {"failed"}
    assert all("malformed" in out[c]["label_error"] for c in range(4))
    assert out[0]["summary_labels"] == ["Unclassified"] and out[0]["model_name"] == "default_label"
    assert out[-1]["label_source"] == "noise" and out[-1]["label_status"] == "noise"


def test_offline_keyword_labels_are_made_distinct_and_nothing_is_asked(llm_server, no_llm_env):
    _, state = llm_server
    keywords = CLUSTER_KEYWORDS.set_column(
        2, "keyword_labels", pa.array([["U"], ["editor"], ["editors"], ["chess"], ["nano"]])
    )
    out = Warehouse(CLUSTERS).names(keywords)
    assert out[0]["summary_labels"] == ["editor, vim"] and out[0]["added_terms"] == ["vim"]
    assert out[1]["summary_labels"] == ["editors, emacs"] and out[1]["distinct_by"] == "keywords"
    assert out[2]["distinct_by"] is None and out[2]["relabel_status"] is None
    assert {out[c]["model_name"] for c in range(4)} == {KEYWORD_MODEL_NAME}
    assert state.calls == 0
