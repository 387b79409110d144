import numpy as np
import pyarrow as pa

from text_clustering import NOISE, cluster, cluster_table, to_arrow
from text_clustering.cluster import relabel_by_size


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


def test_cluster_table_sorts_by_text_id_so_row_order_does_not_matter():
    points = blobs([6, 6])
    ids = [f"t{i:02d}" for i in range(12)]
    forward = pa.table({"text_id": ids, "projection": to_arrow(points)})
    backward = forward.take(list(range(11, -1, -1)))
    a = cluster_table(forward, eps=0.5, min_samples=3)
    b = cluster_table(backward, eps=0.5, min_samples=3)
    assert a.equals(b)
    assert a.schema.field("cluster_label").type == pa.int32()
