import numpy as np
import pyarrow as pa
from sklearn.metrics import adjusted_rand_score

from text_clustering import cluster, project, project_table, to_arrow, to_numpy
from text_clustering.project import exact_knn


def gaussian_groups(n_per_group=40, dim=16, groups=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, dim)) * 5
    x = np.concatenate([rng.normal(c, 0.3, size=(n_per_group, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(groups), n_per_group)


def test_umap_keeps_groups_apart_and_is_deterministic():
    x, truth = gaussian_groups()
    a = project(x, n_neighbors=10, metric="euclidean", random_state=1)
    b = project(x, n_neighbors=10, metric="euclidean", random_state=1)
    assert a.shape == (120, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    found = cluster(a, eps=0.5, min_samples=5)
    assert adjusted_rand_score(truth, found) > 0.95


def test_exact_knn_lists_each_point_first():
    x, _ = gaussian_groups(n_per_group=5)
    distances, indices = exact_knn(x, 3, metric="euclidean")
    assert indices.shape == (15, 3)
    np.testing.assert_array_equal(indices[:, 0], np.arange(15))
    np.testing.assert_allclose(distances[:, 0], 0, atol=1e-5)


def test_few_rows_fall_back_to_pca_and_empty_is_empty():
    x, _ = gaussian_groups(n_per_group=2)
    assert project(x).shape == (6, 2)
    assert project(np.zeros((0, 4), dtype=np.float32)).shape == (0, 2)
    same = np.ones((3, 4), dtype=np.float32)
    np.testing.assert_array_equal(project(same), np.zeros((3, 2)))


def test_n_neighbors_larger_than_the_data_is_capped():
    x, _ = gaussian_groups(n_per_group=4)  # 12 rows, n_neighbors 15
    assert project(x, n_neighbors=15, metric="euclidean").shape == (12, 2)


def test_project_table_output_is_float2_in_text_id_order():
    x, _ = gaussian_groups(n_per_group=4)
    ids = [f"id{i:02d}" for i in range(12)][::-1]
    out = project_table(pa.table({"text_id": ids, "embedding": to_arrow(x)}), metric="euclidean")
    assert out["text_id"].to_pylist() == sorted(ids)
    assert out.schema.field("projection").type == pa.list_(pa.float32(), 2)
    assert to_numpy(out, "projection").shape == (12, 2)
