import math

import numpy as np
import pyarrow as pa
import pytest

from text_clustering import to_arrow
from text_clustering.metrics import clustering_metrics, metrics_table, purity

TWO_PAIRS = np.array([[0, 0], [0, 1], [10, 0], [10, 1]], dtype=np.float32)


def test_purity_by_hand():
    # cluster 0 holds a, a, b (majority 2); cluster 1 holds b (1): 3 of 4
    assert purity(["a", "a", "b", "b"], [0, 0, 0, 1]) == 0.75


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
