"""The topic hierarchy steps on DuckDB relations, as dbt runs them: the tree, the topics'
keywords, and naming every layer bottom-up (the walk the LLM step and the naming models
share)."""

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from text_clustering import LLMSettings, to_arrow, topic_keywords, topic_tree
from text_clustering.keywords import KeywordModel, class_tfidf
from text_clustering.steps.naming import NamingInputs, walk
from text_clustering.steps.topics import TREE_SCHEMA, stable_topic_ids

GROUPS, CLUSTERS_PER_GROUP, TEXTS_PER_CLUSTER = 4, 5, 6
WORDS = ["chess", "mail", "font", "audio"]


def warehouse():
    """20 clusters in 4 well-separated groups of 5 (embedding space), plus 3 noise texts."""
    rng = np.random.default_rng(0)
    ids, labels, vectors, texts = [], [], [], []
    centres = np.eye(GROUPS, 16) * 10
    for g in range(GROUPS):
        for k in range(CLUSTERS_PER_GROUP):
            cluster = g * CLUSTERS_PER_GROUP + k
            offset = rng.normal(0, 1.0, 16)
            for i in range(TEXTS_PER_CLUSTER):
                ids.append(f"t{cluster:02d}-{i}")
                labels.append(cluster)
                vectors.append(centres[g] + offset + rng.normal(0, 0.1, 16))
                texts.append(f"{WORDS[g]} {WORDS[g]} word{cluster} item{i}")
    for i in range(3):
        ids.append(f"noise-{i}")
        labels.append(-1)
        vectors.append(rng.normal(0, 3, 16))
        texts.append(f"stray text {i}")
    con = duckdb.connect()
    n = len(ids)
    con.register(
        "c",
        pa.table(
            {
                "text_id": ids,
                "cluster_label": pa.array(labels, pa.int32()),
                "embedding_hash": pa.array(range(n), pa.uint64()),
                "previous_cluster_label": pa.nulls(n, pa.int32()),  # the first fit
                "cluster_fit": ['{"next_id": 20}'] * n,
            }
        ),
    )
    con.register("p", pa.table({"text_id": ids, "projection_source": ["fit"] * n}))
    con.register("e", pa.table({"text_id": ids, "embedding": to_arrow(np.array(vectors))}))
    con.register("s", pa.table({"text_id": ids, "text": texts}))
    return con


def relations(con):
    return [con.sql(f"select * from {name}") for name in ("c", "p", "e")]


CONFIG = {"max_top_topics": 4, "headline_level": None, "random_state": 42}


def test_the_tree_nests_keeps_noise_at_every_level_and_has_one_headline():
    con = warehouse()
    tree = topic_tree(con, "none_yet", *relations(con), CONFIG).to_pylist()
    levels = sorted({r["level"] for r in tree})
    assert levels == list(range(len(levels))) and len(levels) >= 2
    top = levels[-1]
    nodes = {(r["level"], r["topic_id"]): r for r in tree}
    for r in tree:
        if r["level"] < top:
            assert (r["level"] + 1, r["parent_topic_id"]) in nodes  # its parent exists
        else:
            assert r["parent_topic_id"] is None
    for level in levels:  # sizes add up, noise is noise at every level
        assert sum(r["n_fit_texts"] for r in tree if r["level"] == level) == 123
        assert nodes[(level, -1)]["n_fit_texts"] == 3
        assert level == top or nodes[(level, -1)]["parent_topic_id"] == -1
    assert len([r for r in tree if r["level"] == top and r["topic_id"] >= 0]) <= 4
    assert len({r["level"] for r in tree if r["is_headline"]}) == 1
    # while a layer has at least as many topics as the embedding space has groups, no
    # topic mixes two groups (cluster c lies in group c // CLUSTERS_PER_GROUP)
    up = {(r["level"], r["topic_id"]): r["parent_topic_id"] for r in tree}
    topic_of = {c: c for c in range(GROUPS * CLUSTERS_PER_GROUP)}
    for level in levels[1:]:
        topic_of = {c: up[(level - 1, t)] for c, t in topic_of.items()}
        if len(set(topic_of.values())) >= GROUPS:
            for topic in set(topic_of.values()):
                assert (
                    len({c // CLUSTERS_PER_GROUP for c, t in topic_of.items() if t == topic}) == 1
                )
    assert topic_tree(con, "none_yet", *relations(con), CONFIG).to_pylist() == tree


def test_var_headline_level_overrides_and_is_capped_at_the_top_level(capsys):
    con = warehouse()
    tree = topic_tree(con, "t", *relations(con), {**CONFIG, "headline_level": 0})
    assert {r["level"] for r in tree.to_pylist() if r["is_headline"]} == {0}
    tree = topic_tree(con, "t", *relations(con), {**CONFIG, "headline_level": 9})
    top = max(tree["level"].to_pylist())
    assert {r["level"] for r in tree.to_pylist() if r["is_headline"]} == {top}
    assert "var headline_level=9" in capsys.readouterr().err


def test_the_tree_is_kept_while_its_inputs_are_unchanged():
    con = warehouse()
    first = topic_tree(con, "t", *relations(con), CONFIG)
    con.register("previous", first)
    con.execute("create table kept as select * from previous")
    again = topic_tree(con, "kept", *relations(con), CONFIG)
    assert again.equals(first)
    other = topic_tree(con, "kept", *relations(con), {**CONFIG, "max_top_topics": 12})
    assert other["input_fingerprint"][0] != first["input_fingerprint"][0]


def test_a_flat_tree_reads_no_vector():
    # as many clusters as max_top_topics or fewer: level 0 is the top, the vectors are not read
    con = warehouse()
    clustered, projected, _ = relations(con)
    con.register("broken", pa.table({"text_id": ["x"], "embedding": pa.array(["not a vector"])}))
    tree = topic_tree(
        con,
        "t",
        clustered,
        projected,
        con.sql("select * from broken"),
        {**CONFIG, "max_top_topics": 20},
    )
    assert set(tree["level"].to_pylist()) == {0}
    assert tree.num_rows == GROUPS * CLUSTERS_PER_GROUP + 1  # the clusters and noise


def test_topic_keywords_are_those_of_the_texts_of_the_topic():
    # counting terms once per cluster and summing them up the tree gives the c-TF-IDF of
    # each topic's own texts against the other topics of its level
    con = warehouse()
    tree = topic_tree(con, "t", *relations(con), CONFIG)
    con.register("tree", tree)
    config = {"n": 1, "default_label": "Other"}
    clustered, projected, _ = relations(con)
    out = topic_keywords(
        con,
        "t",
        clustered,
        projected,
        con.sql("select * from s"),
        con.sql("select * from tree"),
        config,
    ).to_pylist()
    parent = {(r["level"], r["topic_id"]): r["parent_topic_id"] for r in tree.to_pylist()}
    rows = con.sql("select c.cluster_label, s.text from c join s using (text_id)").fetchall()
    level = 1
    topic_of = {c: parent[(0, c)] for c, _ in rows}
    expected = class_tfidf([t for _, t in rows], [topic_of[c] for c, _ in rows], top_k=10)
    got = {r["topic_id"]: r["top_keywords"] for r in out if r["level"] == level}
    assert got == expected
    for topic, keywords in got.items():  # a topic's keywords hold its group's word
        members = [c for c, t in topic_of.items() if t == topic and c >= 0]
        assert topic == -1 or WORDS[members[0] // CLUSTERS_PER_GROUP] in keywords


def test_level_zero_keywords_are_the_keyword_models_of_the_clusters():
    # int_cluster_keywords is level 0 of int_topic_keywords: the clusters' own c-TF-IDF and
    # keyword labels, as KeywordModel makes them from the fitted texts
    con = warehouse()
    con.register("tree", topic_tree(con, "t", *relations(con), CONFIG))
    clustered, projected, _ = relations(con)
    for n in (1, 3):
        config = {"n": n, "default_label": "Other"}
        texts, tree = con.sql("select * from s"), con.sql("select * from tree")
        out = topic_keywords(con, "t", clustered, projected, texts, tree, config).to_pylist()
        rows = con.sql("select c.cluster_label, s.text from c join s using (text_id)").fetchall()
        model = KeywordModel(n=n, default_label="Other")
        model.fit([t for _, t in rows], [c for c, _ in rows])
        level0 = {r["topic_id"]: r for r in out if r["level"] == 0}
        assert {c: r["top_keywords"] for c, r in level0.items()} == model.keywords_
        assert {c: r["keyword_labels"] for c, r in level0.items()} == model.labels_


def inputs_for_walk():
    """Two clusters under one topic, one under another; keywords and examples given."""
    keyword = {"keyword_labels": ["kw"], "top_keywords": ["kw"]}
    return NamingInputs(
        prompts={0: ("h0", "prompt 0", 1), 1: ("h1", "prompt 1", 1), 2: ("h2", "prompt 2", 1)},
        keywords={
            (0, -1): keyword,
            (0, 0): keyword,
            (0, 1): keyword,
            (0, 2): keyword,
            (1, -1): keyword,
            (1, 0): {"keyword_labels": ["t0"], "top_keywords": ["alpha"]},
            (1, 1): {"keyword_labels": ["t1"], "top_keywords": ["beta"]},
        },
        examples={(0, 0): ["a"], (0, 1): ["b"], (0, 2): ["c"], (1, 0): ["a", "b"], (1, 1): ["c"]},
        tree=[
            {"level": 0, "topic_id": -1, "parent_topic_id": -1, "n_fit_texts": 1},
            {"level": 0, "topic_id": 0, "parent_topic_id": 0, "n_fit_texts": 9},
            {"level": 0, "topic_id": 1, "parent_topic_id": 0, "n_fit_texts": 5},
            {"level": 0, "topic_id": 2, "parent_topic_id": 1, "n_fit_texts": 4},
            {"level": 1, "topic_id": -1, "parent_topic_id": None, "n_fit_texts": 1},
            {"level": 1, "topic_id": 0, "parent_topic_id": None, "n_fit_texts": 14},
            {"level": 1, "topic_id": 1, "parent_topic_id": None, "n_fit_texts": 4},
        ],
    )


def test_the_walk_names_each_layer_from_the_names_of_the_layer_below():
    settings = LLMSettings(model="m")
    replies: dict = {}
    asked: list = []
    answers = {"prompt 0": "Chess engines", "prompt 1": "Chess clients", "prompt 2": "Fonts"}

    def ask(requests):
        for h, prompt, groups, kind, level, _ in requests:
            if h in replies:
                continue
            asked.append((kind, level, prompt))
            labels = [[answers[prompt]]] if prompt in answers else [["Board games"], ["Typefaces"]]
            assert len(labels) == groups
            replies[h] = {"status": "ok", "labels": labels, "model_name": "m", "error": None}

    names = walk(inputs_for_walk(), replies, settings, online=True, default_label="U", ask=ask)
    # one call per cluster, then one for the family of sibling topics (here: the top level)
    assert [(kind, level) for kind, level, _ in asked] == [("cluster", 0)] * 3 + [("topic", 1)]
    family = asked[3][2]
    # per topic its parts' names, largest first, its keywords and its examples
    assert "## Group 1\n### Its parts\n- Chess engines\n- Chess clients\n" in family
    assert "### Its keywords\nalpha" in family and "1. a\n2. b" in family
    assert "## Group 2\n### Its parts\n- Fonts\n" in family
    assert names[1][0]["summary_labels"] == ["Board games"] and names[1][0]["label_source"] == "llm"
    assert names[1][1]["summary_labels"] == ["Typefaces"]
    assert names[1][-1]["label_source"] == "noise"
    assert names[1][0]["user_prompt"] == family and names[1][0]["n_examples"] == 2
    # the same inputs walk the same way: every request is found in the replies
    count = len(asked)
    again = walk(inputs_for_walk(), replies, settings, online=True, default_label="U", ask=ask)
    assert len(asked) == count and again == names
    # offline: keyword labels, no prompt asked
    offline = walk(inputs_for_walk(), {}, settings, online=False, default_label="U")
    assert offline[1][0]["summary_labels"] == ["t0"] and offline[1][0]["label_source"] == "keywords"


def test_the_walk_stops_at_max_level():
    names = walk(
        inputs_for_walk(), {}, LLMSettings(model="m"), online=False, default_label="U", max_level=0
    )
    assert len(names) == 1 and sorted(names[0]) == [-1, 0, 1, 2]


@pytest.mark.parametrize("bad", [{"max_top_topics": 0}, {"headline_level": -1}])
def test_bad_hierarchy_vars_are_named(bad):
    from text_clustering import ConfigError

    con = warehouse()
    with pytest.raises(ConfigError, match=next(iter(bad))):
        topic_tree(con, "t", *relations(con), {**CONFIG, **bad})


def _tree(parents: dict[int, int], next_ids=(None, None)) -> pa.Table:
    """A two-level tree: clusters (level 0) under their level-1 topics."""
    rows = [
        {"level": 0, "topic_id": c, "parent_topic_id": p, "is_headline": False}
        for c, p in [(-1, -1), *parents.items()]
    ]
    rows += [
        {"level": 1, "topic_id": t, "parent_topic_id": None, "is_headline": True}
        for t in sorted({-1, *parents.values()})
    ]
    for r in rows:
        r |= {"topic_key": f"{r['level']}:{r['topic_id']}", "n_fit_texts": 1}
        r["next_topic_id"] = next_ids[r["level"]]
    return pa.Table.from_pylist(rows, schema=TREE_SCHEMA)


def test_a_refit_keeps_the_ids_of_topics_that_continue_and_never_reuses_one():
    """The hierarchy numbers its topics afresh; matched by their texts, a topic that goes on
    keeps its id, a new one gets an id above every id its level ever had."""
    before = _tree({0: 0, 1: 0, 2: 1, 3: 1}, next_ids=(4, 5))  # ids 2..4 were used earlier
    now = _tree({0: 1, 1: 1, 2: 0, 3: 0, 4: 2})  # the same two topics numbered the other way
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -1])
    previous = np.array([0, 0, 1, 1, 2, 2, 3, 3, -2, -2, -1])  # cluster 4's texts are new
    rows = stable_topic_ids(now, labels, previous, before, next_cluster_id=5).to_pylist()
    parent = {r["topic_id"]: r["parent_topic_id"] for r in rows if r["level"] == 0}
    assert parent == {-1: -1, 0: 0, 1: 0, 2: 1, 3: 1, 4: 5}
    assert sorted(r["topic_id"] for r in rows if r["level"] == 1) == [-1, 0, 1, 5]
    assert {r["level"]: r["next_topic_id"] for r in rows} == {0: 5, 1: 6}
    assert all(r["topic_key"] == f"{r['level']}:{r['topic_id']}" for r in rows)
    first = stable_topic_ids(now, labels, np.full(11, -2), None, next_cluster_id=5).to_pylist()
    assert sorted(r["topic_id"] for r in first if r["level"] == 1) == [-1, 0, 1, 2]


def test_a_topic_family_that_barely_moved_keeps_its_prompt_and_costs_no_call():
    """After a refit the same topics (same ids) show new keywords and partly new
    representatives: while each still shows at least half of the texts the earlier prompt
    showed, the earlier prompt is kept and the reply cache answers it."""
    settings = LLMSettings(model="m")
    replies: dict = {}
    asked: list = []

    def ask(requests):
        for request in requests:
            if request.request_hash in replies:
                continue
            asked.append(request)
            labels = [[f"Topic {i}"] for i in range(request.n_groups)]
            replies[request.request_hash] = {
                "status": "ok",
                "labels": labels,
                "model_name": "m",
                "error": None,
                "kind": request.kind,
                "level": request.level,
                "user_prompt": request.user_prompt,
                "answered_at": len(asked),
                **(request.family or {}),
            }

    first = inputs_for_walk()
    first.examples |= {(1, 0): ["a", "b"], (1, 1): ["c", "d"]}
    first.example_ids = {(1, 0): ["ta", "tb"], (1, 1): ["tc", "td"]}
    names = walk(first, replies, settings, online=True, default_label="U", ask=ask)
    family = [r for r in asked if r.kind == "topic"]
    assert len(family) == 1 and family[0].family["example_ids"] == [["ta", "tb"], ["tc", "td"]]
    n_asked = len(asked)

    moved = inputs_for_walk()  # new keywords, one representative of each topic replaced
    moved.keywords[(1, 0)] = {"keyword_labels": ["t0"], "top_keywords": ["gamma"]}
    moved.examples |= {(1, 0): ["a", "x"], (1, 1): ["c", "y"]}
    moved.example_ids = {(1, 0): ["ta", "tx"], (1, 1): ["tc", "ty"]}
    again = walk(moved, replies, settings, online=True, default_label="U", ask=ask)
    assert len(asked) == n_asked  # no call
    assert again[1][0]["summary_labels"] == names[1][0]["summary_labels"]
    assert again[1][0]["user_prompt"] == family[0].user_prompt  # the kept prompt, for audit

    far = inputs_for_walk()  # half of topic 1's representatives gone: asked again
    far.keywords[(1, 0)] = {"keyword_labels": ["t0"], "top_keywords": ["gamma"]}
    far.examples |= {(1, 0): ["a", "x"], (1, 1): ["y", "z"]}
    far.example_ids = {(1, 0): ["ta", "tx"], (1, 1): ["ty", "tz"]}
    walk(far, replies, settings, online=True, default_label="U", ask=ask)
    assert [r.kind for r in asked[n_asked:]] == ["topic"]
    other = LLMSettings(model="m", temperature=0.5)  # other settings: never kept
    walk(moved, replies, other, online=True, default_label="U", ask=ask)
    assert "topic" in [r.kind for r in asked[n_asked + 1 :]]
