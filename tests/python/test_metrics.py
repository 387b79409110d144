import math

import numpy as np
import pyarrow as pa
import pytest

from text_clustering import to_arrow
from text_clustering.metrics import (
    clustering_metrics,
    label_retrieval_auc,
    layer_means,
    metrics_table,
    purity,
)

TWO_PAIRS = np.array([[0, 0], [0, 1], [10, 0], [10, 1]], dtype=np.float32)


def test_purity_by_hand():
    # cluster 0 holds a, a, b (majority 2); cluster 1 holds b (1): 3 of 4
    assert purity(["a", "a", "b", "b"], [0, 0, 0, 1]) == 0.75


def test_purity_counts_each_clusters_majority_with_noise_as_a_group():
    rng = np.random.RandomState(0)
    reference = rng.choice(["x", "y", "z", "w"], size=500).tolist()
    labels = rng.randint(-1, 7, size=500)
    majority = 0
    for cluster in set(labels.tolist()):
        members = [r for r, c in zip(reference, labels, strict=True) if c == cluster]
        majority += max(members.count(r) for r in set(members))
    got = clustering_metrics(labels, rng.rand(500, 2), reference)
    assert got["purity"] == pytest.approx(majority / 500)
    assert purity(reference, labels) == pytest.approx(majority / 500)


def test_silhouette_by_hand():
    # a(i) = 1 (the other point of the pair); b(i) = (10 + sqrt(101)) / 2 for every point
    b = (10 + math.sqrt(101)) / 2
    got = clustering_metrics(np.array([0, 0, 1, 1]), TWO_PAIRS)["silhouette"]
    assert got == pytest.approx((b - 1) / b, abs=1e-6)


def test_perfect_partition_scores_one_and_noise_counts_as_a_group():
    labels = np.array([0, 0, 1, 1, -1])
    points = np.vstack([TWO_PAIRS, [[5, 5]]]).astype(np.float32)
    reference = ["x", "x", "y", "y", "z"]
    got = clustering_metrics(labels, points, reference)
    assert got["n_texts"] == 5 and got["n_clusters"] == 2
    assert got["noise_share"] == pytest.approx(0.2)
    assert got["largest_cluster_share"] == pytest.approx(0.4) and got["median_cluster_size"] == 2
    assert got["nmi"] == pytest.approx(1.0) and got["ari"] == pytest.approx(1.0)
    assert got["purity"] == 1.0 and got["purity_excluding_noise"] == 1.0
    # the same noise point given the "x" reference: it is wrong only when noise counts
    worse = clustering_metrics(labels, points, ["x", "x", "y", "y", "x"])
    assert worse["purity"] == pytest.approx(1.0) and worse["nmi"] < 1.0
    assert worse["nmi_excluding_noise"] == pytest.approx(1.0)


def test_undefined_metrics_are_none():
    got = clustering_metrics(np.array([-1, -1]), np.zeros((2, 2), np.float32))
    assert got["n_clusters"] == 0 and got["silhouette"] is None and got["nmi"] is None
    assert got["largest_cluster_share"] is None
    empty = clustering_metrics(np.zeros(0, np.int32), np.zeros((0, 2), np.float32))
    assert empty["n_texts"] == 0 and empty["noise_share"] is None


def test_metrics_table_is_one_row_in_text_id_order():
    table = pa.table(
        {
            "text_id": ["d", "c", "b", "a"],
            "projection": to_arrow(TWO_PAIRS[::-1].copy()),
            "cluster_label": pa.array([1, 1, 0, 0], pa.int32()),
            "reference_label": ["q", "q", "p", "p"],
        }
    )
    row = metrics_table(table, reference_column="reference_label").to_pylist()[0]
    assert row["n_clusters"] == 2 and row["ari"] == pytest.approx(1.0)
    assert metrics_table(table).to_pylist()[0]["nmi"] is None


def test_nmi_ari_and_silhouette_equal_scikit_learns():
    # our NumPy versions (no 2.5 s import of sklearn.metrics) on random partitions, with
    # noise, single clusters, singletons, and a silhouette sample drawn like sklearn's
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    from text_clustering.metrics import ari, nmi, silhouette

    rng = np.random.default_rng(0)
    checked_silhouettes = 0
    for _ in range(200):
        n = int(rng.integers(1, 60))
        reference = [f"c{x}" for x in rng.integers(0, int(rng.integers(1, 6)), n)]
        labels = rng.integers(-1, int(rng.integers(1, 8)), n)
        assert nmi(reference, labels) == pytest.approx(
            normalized_mutual_info_score(reference, labels), abs=1e-12
        )
        assert ari(reference, labels) == pytest.approx(
            adjusted_rand_score(reference, labels), abs=1e-12
        )
        k = len(set(labels.tolist()))
        sample = int(rng.integers(2, n + 1)) if n > 2 else n
        if 2 <= k <= n - 1 and 2 <= len(set(labels[_sample(n, sample)].tolist())) <= sample - 1:
            points = rng.normal(size=(n, 2)).astype(np.float32)
            expected = silhouette_score(
                points.astype(np.float64), labels, sample_size=sample, random_state=3
            )
            got = silhouette(points, labels, sample_size=sample, random_state=3)
            assert got == pytest.approx(expected, abs=1e-12)
            checked_silhouettes += 1
    assert checked_silhouettes > 50


def _sample(n, size):
    return np.random.RandomState(3).permutation(n)[:size]


# --- label quality -------------------------------------------------------------------------

# two topics on two axes; each label points at its topic's axis
TEXTS = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.3], [0.0, 1.0], [0.2, 0.9], [0.1, 0.7]])
TOPICS = np.array([0, 0, 0, 1, 1, 1])


def test_a_label_that_ranks_all_its_texts_first_scores_one_and_its_opposite_zero():
    labels = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    auc = label_retrieval_auc(TEXTS, TOPICS, labels, np.array([0, 1, 0]))
    assert auc.tolist() == [1.0, 1.0, 0.0]  # the third names topic 0 but points at topic 1


def test_auc_by_hand_with_a_tie_counting_half():
    texts = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.0, 1.0]])
    # label (1, 0): own texts 0, 1 score 1.0, 0.6; others 2, 3 score 0.6, 0.0
    # pairs: (1.0 > 0.6), (1.0 > 0.0), (0.6 = 0.6: half), (0.6 > 0.0) -> 3.5 / 4
    auc = label_retrieval_auc(texts, np.array([5, 5, 7, 7]), np.array([[2.0, 0.0]]), [5])
    assert auc.tolist() == [0.875]


def test_a_random_label_scores_about_one_half():
    rng = np.random.default_rng(0)
    texts = rng.normal(size=(4000, 16))
    topics = rng.integers(0, 4, size=4000)
    auc = label_retrieval_auc(texts, topics, rng.normal(size=(4, 16)), np.arange(4))
    assert np.all(np.abs(auc - 0.5) < 0.06)


def test_labels_without_texts_or_without_others_are_nan_and_sampling_is_seeded():
    auc = label_retrieval_auc(TEXTS, np.zeros(6, int), np.eye(2), np.array([0, 9]))
    assert np.isnan(auc).all()  # topic 0 has every text (no others); topic 9 has none
    rng = np.random.default_rng(1)
    texts, topics = rng.normal(size=(300, 8)), rng.integers(0, 3, size=300)
    labels = rng.normal(size=(3, 8))
    kwargs = {"max_positives": 20, "max_negatives": 30}
    first = label_retrieval_auc(texts, topics, labels, np.arange(3), **kwargs, random_state=3)
    again = label_retrieval_auc(texts, topics, labels, np.arange(3), **kwargs, random_state=3)
    other = label_retrieval_auc(texts, topics, labels, np.arange(3), **kwargs, random_state=4)
    assert first.tolist() == again.tolist() and first.tolist() != other.tolist()


def test_layer_means_weight_by_size_and_skip_unscored_labels():
    mean, weighted = layer_means(np.array([1.0, 0.5, np.nan]), np.array([3, 1, 100]))
    assert mean == 0.75 and weighted == (3 * 1.0 + 0.5) / 4
    assert layer_means(np.array([np.nan]), np.array([1])) == (None, None)


def _topic(level, topic, parent, n, label, keywords):
    return {
        "topic_key": f"{level}:{topic}",
        "level": level,
        "topic_id": topic,
        "parent_topic_id": parent,
        "n_texts": n,
        "summary_label": label,
        "model_name": "c-tf-idf",
        "top_keywords": keywords,
    }


TOPIC_ROWS = [
    _topic(0, -1, -1, 1, "Unclassified", []),
    _topic(0, 0, 0, 3, "right", ["right"]),
    _topic(0, 1, 0, 2, "wrong", ["upward", "upwards"]),
    _topic(1, -1, None, 1, "Unclassified", []),
    _topic(1, 0, None, 5, "both", ["right"]),
]
AXES = {"right": [1.0, 0.0], "upward": [0.0, 1.0], "wrong": [0.0, -1.0], "both": [1.0, 1.0]}


def test_label_quality_rows_score_the_label_shown_and_the_keyword_label_per_level():
    from text_clustering.steps.reports import label_quality_table

    clusters = np.array([0, 0, 0, 1, 1, -1])  # the last text is noise: one of the others
    embed = lambda labels: np.array([AXES[x] for x in labels])  # noqa: E731
    rows = label_quality_table(TOPIC_ROWS, clusters, TEXTS, embed, model_name="m").to_pylist()
    by_key = {r["topic_key"]: r for r in rows}
    assert by_key["0:0"]["label_auc"] == 1.0 and by_key["0:0"]["keyword_label"] == "right"
    # cluster 1's texts (0.0, 1.0), (0.2, 0.9) against (1, 0), (.9, .1), (.8, .3), (.1, .7)
    assert by_key["0:1"]["label_auc"] < 0.5 < by_key["0:1"]["keyword_label_auc"]
    assert by_key["0:1"]["keyword_label"] == "upward"  # "upwards": a plural twin
    assert by_key["0:-1"]["label_auc"] is None and by_key["1:0"]["label_auc"] is not None
    level0 = (by_key["0:0"]["label_auc"] + by_key["0:1"]["label_auc"]) / 2
    assert by_key["0:-1"]["level_label_auc"] == pytest.approx(level0)
    weighted = (3 * by_key["0:0"]["label_auc"] + 2 * by_key["0:1"]["label_auc"]) / 5
    assert by_key["0:1"]["level_label_auc_weighted"] == pytest.approx(weighted)
    assert {r["embedding_model"] for r in rows} == {"m"} and not any(r["skip_reason"] for r in rows)


def test_label_quality_says_why_when_the_labels_cannot_be_embedded():
    from text_clustering.steps.reports import _embed_labels, label_quality_table

    reason = _embed_labels(["right"], "openai:text-embedding-3-small", "vec", 384, 8)
    assert "embedding_column='vec'" in reason and "sentence-transformers" in reason
    clusters = np.array([0, 0, 0, 1, 1, -1])
    rows = label_quality_table(TOPIC_ROWS, clusters, TEXTS, lambda _: reason, model_name="m")
    assert set(rows["skip_reason"].to_pylist()) == {reason}
    assert rows["label_auc"].null_count == rows.num_rows == 5
    assert set(rows["embedding_model"].to_pylist()) == {None}


def test_label_quality_reads_a_deterministic_sample_of_a_large_table():
    import duckdb

    from text_clustering.steps.reports import scored_texts

    con = duckdb.connect()
    texts = con.sql("select 't' || i as text_id, i % 7 as cluster_label from range(1000) t(i)")
    assert scored_texts(texts, limit=1000) is texts  # small enough: every text
    sample = scored_texts(texts, limit=100)
    ids = [r[0] for r in sample.fetchall()]
    assert 50 <= len(ids) <= 150 and len(set(ids)) == len(ids)
    assert ids == [r[0] for r in scored_texts(texts, limit=100).fetchall()]  # the same again
