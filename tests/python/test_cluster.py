import numpy as np
import pyarrow as pa

from text_clustering import NOISE, DensityClusterer, to_arrow
from text_clustering.clustering import relabel_by_size


def cluster(points, **params):
    return DensityClusterer(noise_policy="keep", **params).fit(points).labels_


def blobs(sizes, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centres = [(0, 0), (5, 0), (0, 5), (5, 5)]
    parts = [rng.normal(centres[i], spread, size=(n, 2)) for i, n in enumerate(sizes)]
    return np.concatenate(parts).astype(np.float32)


def test_dense_blobs_become_clusters_numbered_by_size():
    points = np.concatenate([blobs([10, 30, 20]), [[50.0, 50.0]]]).astype(np.float32)
    labels = cluster(points, eps=0.5, min_samples=5)
    assert labels.dtype == np.int32
    assert set(labels[:10]) == {2} and set(labels[10:40]) == {0} and set(labels[40:60]) == {1}
    assert labels[-1] == NOISE


def test_relabel_by_size_breaks_ties_by_first_member():
    raw = np.array([7, 7, 3, 3, -1, 9, 9, 9])
    np.testing.assert_array_equal(relabel_by_size(raw), [1, 1, 2, 2, -1, 0, 0, 0])


def test_empty_input():
    assert cluster(np.zeros((0, 2), dtype=np.float32)).shape == (0,)


def test_the_step_sorts_by_text_id_so_row_order_does_not_matter():
    forward = projected_table(blobs([6, 6]), ["fit"] * 12)
    backward = forward.take(list(range(11, -1, -1)))
    settings = ClusterSettings(eps=0.5, min_samples=3, noise_policy="keep")
    a = cluster_incremental(forward, None, settings)
    b = cluster_incremental(backward, None, settings)
    assert a.equals(b)
    assert a.schema.field("cluster_label").type == pa.int32()


# --- auto eps, HDBSCAN, assignment, noise policy, facets, reuse -------------------------

import json  # noqa: E402

import pytest  # noqa: E402

from text_clustering import ClusterSettings, ConfigError, InputError  # noqa: E402
from text_clustering.clustering import (  # noqa: E402
    Centroids,
    assign_nearest,
    auto_eps,
    cluster_centroids,
    density_labels,
    k_distances,
    reassign_noise,
    reassign_to_centroids,
)
from text_clustering.facets import facets  # noqa: E402
from text_clustering.steps.clustering import cluster_incremental  # noqa: E402


def test_k_distances_by_hand():
    points = np.array([[0, 0], [1, 0], [3, 0]], dtype=np.float32)
    np.testing.assert_allclose(k_distances(points, 1), [1, 1, 2])
    np.testing.assert_allclose(k_distances(points, 2), [3, 2, 3])


def test_auto_eps_is_the_quantile_of_the_k_distance():
    points = np.array([[0, 0], [1, 0], [3, 0], [6, 0], [10, 0]], dtype=np.float32)
    # 1st-neighbour distances: 1, 1, 2, 3, 4 -> median 2
    assert auto_eps(points, 2, quantile=0.5) == pytest.approx(2.0)
    assert auto_eps(np.zeros((5, 2), dtype=np.float32), 3) > 0  # never 0


def test_auto_eps_follows_the_scale_of_the_layout():
    small = blobs([50, 50, 50], spread=0.05)
    labels_small, eps_small = density_labels(small, min_samples=5)
    labels_big, eps_big = density_labels(small * 100, min_samples=5)
    assert eps_big == pytest.approx(eps_small * 100, rel=1e-4)
    np.testing.assert_array_equal(labels_small, labels_big)
    # no cluster spans two blobs, and each blob is mostly one cluster (its fringe may split)
    parts = [labels_small[i * 50 : (i + 1) * 50] for i in range(3)]
    found = [set(part.tolist()) - {NOISE} for part in parts]
    assert not (found[0] & found[1]) and not (found[0] & found[2]) and not (found[1] & found[2])
    assert all(np.bincount(part[part != NOISE]).max() >= 40 for part in parts)


def test_hdbscan_finds_the_blobs_without_eps():
    points = np.concatenate([blobs([40, 60, 50]), [[50.0, 50.0]]]).astype(np.float32)
    labels, radius = density_labels(points, algorithm="hdbscan", min_samples=10)
    assert set(labels[40:100]) == {0} and set(labels[100:150]) == {1}
    assert set(labels[:40]) == {2} and labels[-1] == NOISE
    assert radius > 0


def test_assign_nearest_within_radius_else_noise():
    reference = np.array([[0, 0], [10, 0]], dtype=np.float32)
    labels, distances = assign_nearest(
        reference, np.array([3, 5]), np.array([[1, 0], [9.5, 0], [5, 5]]), radius=2.0
    )
    np.testing.assert_array_equal(labels, [3, 5, NOISE])
    np.testing.assert_allclose(distances[:2], [1, 0.5])


def test_reassign_noise_closest_first_until_the_target_share():
    anchors = np.array([[0, 0], [10, 0]], dtype=np.float32)
    anchor_labels = np.array([0, 1], dtype=np.int32)
    points = np.array([[1, 0], [0, 3], [10, 2], [50, 50]], dtype=np.float32)
    labels = np.full(4, NOISE, dtype=np.int32)
    moved = reassign_noise(
        points, labels, anchors, anchor_labels, max_distance=5.0, target_share=0.5
    )
    # 4 noise, target 50 % -> move the 2 closest: (1,0) at 1 and (10,2) at 2, not (0,3) at 3
    np.testing.assert_array_equal(labels, [0, NOISE, 1, NOISE])
    np.testing.assert_array_equal(moved, [True, False, True, False])
    labels = np.full(4, NOISE, dtype=np.int32)
    reassign_noise(points, labels, anchors, anchor_labels, max_distance=5.0)
    np.testing.assert_array_equal(labels, [0, 0, 1, NOISE])  # (50,50) is too far


def test_facets_cover_the_cluster_and_start_at_its_centre():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(400, 2)).astype(np.float32)
    labels = np.zeros(400, dtype=np.int32)
    labels[:5] = NOISE
    facet, distance = facets(points, labels, 4)
    assert set(facet[:5]) == {-1} and np.isnan(distance[:5]).all()
    assert set(facet[5:]) == {0, 1, 2, 3}
    centres = np.array([points[facet == f].mean(axis=0) for f in range(4)])
    gaps = np.linalg.norm(centres - points[5:].mean(axis=0), axis=1)
    assert list(np.argsort(gaps)) == [0, 1, 2, 3]  # numbered outwards from the centre
    again, _ = facets(points, labels, 4)
    np.testing.assert_array_equal(facet, again)


def test_facets_of_a_cluster_of_copies_is_one_facet():
    points = np.ones((6, 2), dtype=np.float32)
    facet, distance = facets(points, np.zeros(6, dtype=np.int32), 3)
    np.testing.assert_array_equal(facet, 0)
    np.testing.assert_allclose(distance, 0)


def projected_table(points, sources, fit_id="f1", ids=None):
    n = len(points)
    ids = ids or [f"t{i:03d}" for i in range(n)]
    return pa.table(
        {
            "text_id": ids,
            "embedding_hash": pa.array(range(n), pa.uint64()),
            "projection": to_arrow(np.asarray(points, dtype=np.float32)),
            "projection_source": sources,
            "fit_id": [fit_id] * n,
        }
    )


KEEP_POLICY = {"noise_policy": "keep"}
KEEP = ClusterSettings(**KEEP_POLICY)


def test_cluster_incremental_fits_on_fit_rows_and_assigns_the_rest():
    points = blobs([30, 30])
    sources = ["fit"] * 50 + ["transform"] * 10
    out = cluster_incremental(projected_table(points, sources), None, KEEP)
    labels = out["cluster_label"].to_numpy()
    assert len(set(labels[:50]) - {NOISE}) == 2
    assert set(out["assigned_by"].to_pylist()[50:]) == {"nearest_fit"}
    # inside the second blob: its cluster when within eps of a fitted text, else noise
    blob = np.bincount(labels[30:50][labels[30:50] != NOISE]).argmax()
    assert set(labels[50:].tolist()) <= {blob, NOISE} and (labels[50:] == blob).sum() >= 8
    fit = json.loads(out["cluster_fit"][0].as_py())
    assert fit["eps_used"] > 0 and fit["n_fit"] == 50 and fit["eps"] is None


def test_cluster_incremental_reuses_labels_and_only_assigns_new_texts():
    points = blobs([30, 30])
    first = cluster_incremental(projected_table(points, ["fit"] * 60), None, KEEP)
    grown = np.concatenate([points, [[5.0, 0.01], [100.0, 100.0]]])
    table = projected_table(grown, ["fit"] * 60 + ["new"] * 2)
    second = cluster_incremental(table, first, KEEP)
    assert (
        second.slice(0, 60)
        .select(["cluster_label", "assigned_by"])
        .equals(first.select(["cluster_label", "assigned_by"]))
    )
    second_blob = np.bincount(first["cluster_label"].to_numpy()[30:60] + 1).argmax() - 1
    assert second["cluster_label"].to_pylist()[60:] == [second_blob, NOISE]
    # another fit (or other settings) -> clusters are fitted again
    other = cluster_incremental(table, first, ClusterSettings(min_samples=3, noise_policy="keep"))
    assert set(other["assigned_by"].to_pylist()[:60]) == {"dbscan"}


def test_a_refit_of_the_same_texts_with_new_vectors_keeps_the_cluster_ids():
    # another embedding model, backend or export: every vector (and embedding_hash) changes,
    # the texts stay; the clusters of the same texts keep their ids (overrides name them)
    points = blobs([30, 30])
    first = cluster_incremental(projected_table(points, ["fit"] * 60), None, KEEP)
    moved = projected_table(points + 0.01, ["fit"] * 60, fit_id="f2")
    moved = moved.set_column(1, "embedding_hash", pa.array(range(100, 160), pa.uint64()))
    second = cluster_incremental(moved, first, KEEP)
    assert set(second["assigned_by"].to_pylist()) == {"dbscan"}  # fitted again
    assert second["cluster_label"].equals(first["cluster_label"])
    assert second["previous_cluster_label"].equals(first["cluster_label"])
    fit = json.loads(second["cluster_fit"][0].as_py())
    assert fit["next_id"] == json.loads(first["cluster_fit"][0].as_py())["next_id"]


def test_noise_policy_nearest_moves_fitted_noise():
    points = np.concatenate([blobs([30, 30]), [[0.6, 0.0], [40.0, 40.0]]]).astype(np.float32)
    table = projected_table(points, ["fit"] * 62)
    keep = cluster_incremental(table, None, ClusterSettings(eps=0.3, min_samples=5, **KEEP_POLICY))
    assert keep["cluster_label"].to_pylist()[60:] == [NOISE, NOISE]
    near = cluster_incremental(
        table, None, ClusterSettings(eps=0.3, min_samples=5, noise_policy="nearest")
    )
    assert near["cluster_label"].to_pylist()[60:] == [keep["cluster_label"][0].as_py(), NOISE]
    assert near["assigned_by"].to_pylist()[60] == "noise_policy"
    anywhere = ClusterSettings(
        eps=0.3, min_samples=5, noise_policy="nearest", noise_max_distance=None
    )
    assert NOISE not in cluster_incremental(table, None, anywhere)["cluster_label"].to_pylist()


def test_cluster_centroids_by_hand():
    vectors = np.array([[2, 0], [1, 0], [0.6, 0.8], [0, 3], [5, 5]], dtype=np.float32)
    got = cluster_centroids(vectors, np.array([4, 4, 4, 1, NOISE]))
    # cluster 4: unit rows (1,0), (1,0), (0.6,0.8) -> mean (2.6/3, 0.8/3) -> unit direction
    direction = np.array([2.6, 0.8]) / np.hypot(2.6, 0.8)
    np.testing.assert_array_equal(got.labels, [1, 4])
    np.testing.assert_allclose(got.vectors, [[0, 1], direction], atol=1e-6)
    # reach = the least similar member: (0.6, 0.8) for cluster 4; cluster 1 has one member
    np.testing.assert_allclose(got.reach, [1.0, 0.6 * direction[0] + 0.8 * direction[1]])


def test_reassign_to_centroids_within_reach_most_similar_first():
    centroids = Centroids(
        labels=np.array([3, 5], dtype=np.int32),
        vectors=np.array([[1, 0], [0, 1]], dtype=np.float32),
        reach=np.array([0.9, 0.5], dtype=np.float32),
    )
    vectors = np.array(
        [[1, 0.1], [1, 1.5], [1, 1], [0, 1], [9, 9]], dtype=np.float32
    )  # cos to 3 / 5: 0.995 / 0.1; 0.55 / 0.83; 0.71 / 0.71; 0 / 1; (a member)
    labels = np.array([NOISE, NOISE, NOISE, NOISE, 3], dtype=np.int32)
    out = labels.copy()
    moved = reassign_to_centroids(vectors, out, centroids)
    # row 2 is most similar to 3 (tie -> first) but below 3's reach: it stays noise
    np.testing.assert_array_equal(out, [3, 5, NOISE, 5, 3])
    np.testing.assert_array_equal(moved, [True, True, False, True, False])
    # 2 of the 5 texts may stay noise: only the two most similar move (rows 3 and 0)
    out = labels.copy()
    reassign_to_centroids(vectors, out, centroids, target_share=0.4)
    np.testing.assert_array_equal(out, [3, NOISE, NOISE, 5, 3])


def embeddings_of(vectors):
    """An ``embeddings`` callable over ``vectors`` for texts named t000, t001, ..."""
    calls = []

    def read(wanted):
        calls.append(len(wanted))
        return vectors[[int(i[1:]) for i in wanted.to_pylist()]]

    return read, calls


def test_noise_policy_centroid_uses_the_embeddings():
    # 2-D: two blobs and two far-away texts; embeddings: blob A ~ e1, blob B ~ e2, the first
    # far text ~ e2 (joins B), the second ~ e3 (like no cluster: stays noise)
    points = np.concatenate([blobs([30, 30]), [[40.0, 40.0], [-40.0, 40.0]]]).astype(np.float32)
    rng = np.random.default_rng(1)
    vectors = np.zeros((63, 3), dtype=np.float32)
    vectors[:30, 0] = vectors[30:60, 1] = 1.0
    vectors[:60] += rng.normal(0, 0.05, (60, 3)).astype(np.float32)
    vectors[60], vectors[61], vectors[62] = [0.05, 1, 0], [0, 0, 1], [1, 0.02, 0.01]
    read, calls = embeddings_of(vectors)
    table = projected_table(points, ["fit"] * 62)
    settings = ClusterSettings(eps=0.3, min_samples=5)
    out = cluster_incremental(table, None, settings, embeddings=read)
    labels = out["cluster_label"].to_pylist()
    blob_b = labels[30]
    assert labels[60:] == [blob_b, NOISE]
    assert out["assigned_by"].to_pylist()[60:] == ["noise_policy", "dbscan"]
    assert calls == [62]
    # reused fit: a new text far from every fitted text in 2-D, embedded like blob A
    grown = projected_table(np.concatenate([points, [[-40.0, -40.0]]]), ["fit"] * 62 + ["new"])
    read, calls = embeddings_of(vectors)
    again = cluster_incremental(grown, out, settings, embeddings=read)
    assert again["cluster_label"].to_pylist()[:62] == labels
    assert again["cluster_label"][62].as_py() == labels[0]
    assert again["assigned_by"][62].as_py() == "noise_policy"
    assert calls == [60, 1]  # the fitted members (for the centroids), then the new noise
    with pytest.raises(InputError, match="embeddings"):
        cluster_incremental(table, None, settings)


@pytest.mark.parametrize(
    "params, var",
    [
        ({"algorithm": "kmeans"}, "clustering_algorithm"),
        ({"noise_policy": "drop"}, "noise_policy"),
        ({"target_noise_share": 1.5}, "target_noise_share"),
        ({"eps": 0.0}, "eps"),
        ({"min_samples": 1}, "min_samples"),
    ],
)
def test_the_clusterer_names_the_bad_var_when_fitted(params, var):
    clusterer = DensityClusterer(**params)  # sklearn-style: nothing checked before fit
    with pytest.raises(ConfigError, match=var):
        clusterer.fit(blobs([10, 10]))


def test_predict_assigns_new_points_like_the_fit_and_is_deterministic():
    points = blobs([30, 30])
    clusterer = DensityClusterer(eps=0.5, min_samples=5, noise_policy="keep").fit(points)
    again = DensityClusterer(eps=0.5, min_samples=5, noise_policy="keep").fit(points)
    np.testing.assert_array_equal(clusterer.labels_, again.labels_)
    new = np.array([[5.0, 0.01], [0.01, 0.0], [100.0, 100.0]], dtype=np.float32)
    expected = [clusterer.labels_[30], clusterer.labels_[0], NOISE]
    assert clusterer.predict(new).tolist() == expected
    assert clusterer.eps_ == 0.5 and clusterer.moved_.sum() == 0
