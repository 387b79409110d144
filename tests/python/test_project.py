import numpy as np
import pyarrow as pa
from sklearn.metrics import adjusted_rand_score

from text_clustering import DensityClusterer, UMAPProjector, to_arrow, to_numpy
from text_clustering.knn import exact_knn


def project(x, **params):
    return UMAPProjector(**params).fit_transform(x)


def cluster(points, **params):
    return DensityClusterer(noise_policy="keep", **params).fit(points).labels_


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


def test_transform_of_the_fitted_vectors_lands_on_their_own_positions():
    x, _ = gaussian_groups(n_per_group=4)
    projector = UMAPProjector(n_neighbors=5).fit(x)
    assert projector.method_ == "umap" and projector.embedding_.shape == (12, 2)
    np.testing.assert_allclose(projector.transform(x[:3]), projector.embedding_[:3], atol=1e-5)
    restored = UMAPProjector.restore(x, projector.embedding_, n_neighbors=5)
    np.testing.assert_array_equal(restored.transform(x[5:7]), projector.transform(x[5:7]))


def test_bad_n_neighbors_is_named_when_fitted():
    from text_clustering import ConfigError

    projector = UMAPProjector(n_neighbors=1)
    with pytest.raises(ConfigError, match="n_neighbors"):
        projector.fit(np.zeros((10, 3), dtype=np.float32))


def test_layout_epochs_follow_umap_learn_up_to_20k_texts_then_fall_to_100_at_30k():
    from text_clustering.projection import layout_epochs

    assert [layout_epochs(n) for n in (8, 10_000)] == [500, 500]
    assert [layout_epochs(n) for n in (10_001, 20_000, 20_099)] == [200, 200, 200]
    assert [layout_epochs(n) for n in (20_100, 25_000, 29_999)] == [199, 150, 101]
    assert [layout_epochs(n) for n in (30_000, 50_000, 1_000_000)] == [100, 100, 100]


def test_n_epochs_is_passed_to_the_layout_and_a_bad_one_is_named(capsys):
    from text_clustering import ConfigError

    x, _ = gaussian_groups()
    default = project(x, n_neighbors=10)
    assert "layout (500 epochs)" in capsys.readouterr().err
    fewer = project(x, n_neighbors=10, n_epochs=20)
    assert "layout (20 epochs)" in capsys.readouterr().err
    assert not np.allclose(default, fewer)
    with pytest.raises(ConfigError, match="n_epochs"):
        UMAPProjector(n_epochs=0).fit(x)


# --- sample fit, transform, reuse -------------------------------------------------------

import duckdb  # noqa: E402
import pytest  # noqa: E402

from text_clustering.projection import n_distinct  # noqa: E402
from text_clustering.steps.projection import (  # noqa: E402
    PROJECTED_SCHEMA,
    ProjectionSettings,
    embeddings_reader,
    project_incremental,
)


def transform(fit_vectors, fit_points, vectors, **params):
    return UMAPProjector.restore(fit_vectors, fit_points, **params).transform(vectors)


def test_n_distinct_counts_rows():
    x = np.array([[1, 2], [1, 2], [2, 1], [0, 0]], dtype=np.float32)
    assert n_distinct(x) == 3
    assert n_distinct(np.zeros((0, 3), dtype=np.float32)) == 0


def test_transform_puts_a_copy_on_its_original_and_mixes_neighbours():
    fit_vectors = np.eye(3, dtype=np.float32)
    fit_points = np.array([[0, 0], [10, 0], [0, 10]], dtype=np.float32)
    out = transform(fit_vectors, fit_points, fit_vectors[1:2], n_neighbors=3, metric="euclidean")
    np.testing.assert_allclose(out, [[10, 0]], atol=1e-4)
    # equidistant from all three: the plain mean of their positions
    middle = np.full((1, 3), 1 / 3, dtype=np.float32)
    out = transform(fit_vectors, fit_points, middle, n_neighbors=3, metric="euclidean")
    np.testing.assert_allclose(out, [[10 / 3, 10 / 3]], atol=1e-4)


def embedded_relation(con, x, ids=None):
    ids = ids or [f"id{i:04d}" for i in range(len(x))]
    table = pa.table({"text_id": ids, "embedding": to_arrow(x)})
    con.register("embedded_source", table)
    return con.sql("select * from embedded_source")


SETTINGS = ProjectionSettings(n_neighbors=10, metric="euclidean", max_fit_rows=80)


def test_only_max_fit_rows_are_fitted_and_the_rest_is_projected_near_its_group():
    x, truth = gaussian_groups(n_per_group=40)
    con = duckdb.connect()
    out = project_incremental(con, embedded_relation(con, x), None, SETTINGS, batch_size=7)
    assert out.schema == PROJECTED_SCHEMA and out.num_rows == 120
    sources = out["projection_source"].to_pylist()
    assert sources.count("fit") == 80 and sources.count("transform") == 40
    assert out["text_id"].to_pylist() == sorted(out["text_id"].to_pylist())
    found = cluster(to_numpy(out, "projection"), eps=0.5, min_samples=5)
    assert adjusted_rand_score(truth, found) > 0.95  # projected texts land in their group
    again = project_incremental(con, embedded_relation(con, x), None, SETTINGS, batch_size=7)
    assert again.equals(out)  # deterministic
    other = project_incremental(con, embedded_relation(con, x), None, SETTINGS, batch_size=50)
    # another batch size changes float rounding in the matrix products, not the result
    np.testing.assert_allclose(
        to_numpy(other, "projection"), to_numpy(out, "projection"), atol=1e-4
    )


def test_texts_outside_the_fit_are_placed_by_transform_while_umap_lays_out_the_fit():
    # the rest's neighbours are searched on a second thread during the UMAP layout: the
    # positions must be what transform() gives on the finished fit, up to the float
    # rounding of other block sizes
    x, _ = gaussian_groups(n_per_group=40)
    con = duckdb.connect()
    out = project_incremental(con, embedded_relation(con, x), None, SETTINGS, batch_size=7)
    ids = out["text_id"].to_pylist()
    sources = out["projection_source"].to_pylist()
    points = to_numpy(out, "projection")
    fit = [i for i, source in enumerate(sources) if source == "fit"]
    rest = [i for i, source in enumerate(sources) if source == "transform"]
    by_id = {f"id{i:04d}": i for i in range(len(x))}
    expected = transform(
        x[[by_id[ids[i]] for i in fit]],
        points[fit],
        x[[by_id[ids[i]] for i in rest]],
        n_neighbors=SETTINGS.n_neighbors,
        metric=SETTINGS.metric,
    )
    np.testing.assert_allclose(points[rest], expected, atol=1e-3)


def test_the_fit_sample_is_chosen_by_hash_not_by_position():
    x, _ = gaussian_groups(n_per_group=40)
    con = duckdb.connect()
    ids = [f"id{i:04d}" for i in range(120)]
    out = project_incremental(con, embedded_relation(con, x, ids), None, SETTINGS)
    fitted = set(
        out.filter(pa.compute.equal(out["projection_source"], "fit"))["text_id"].to_pylist()
    )
    expected = con.sql(
        "select text_id from embedded_source order by md5(text_id), text_id limit 80"
    ).fetchall()
    assert fitted == {row[0] for row in expected}


def test_a_fit_made_before_var_n_epochs_is_reused_while_it_is_null():
    import json

    assert "n_epochs" not in json.loads(ProjectionSettings().to_json())  # as fits before it
    assert json.loads(ProjectionSettings(n_epochs=50).to_json())["n_epochs"] == 50


def test_unchanged_input_reuses_everything_and_new_texts_are_only_projected():
    x, _ = gaussian_groups(n_per_group=40)
    con = duckdb.connect()
    first = project_incremental(con, embedded_relation(con, x[:110]), None, SETTINGS)
    same = project_incremental(con, embedded_relation(con, x[:110]), first, SETTINGS)
    assert same.equals(first)
    ids = [f"id{i:04d}" for i in range(110)] + ["new1", "new2"]
    grown = project_incremental(con, embedded_relation(con, x[:112], ids), first, SETTINGS)
    assert grown["fit_id"][0] == first["fit_id"][0]
    by_id = {r["text_id"]: r for r in grown.to_pylist()}
    assert by_id["new1"]["projection_source"] == "new"
    for row in first.to_pylist():
        assert by_id[row["text_id"]]["projection"] == row["projection"]


def test_texts_added_over_several_builds_add_up_to_a_refit(capsys):
    x, _ = gaussian_groups(n_per_group=40)
    con = duckdb.connect()
    first = project_incremental(con, embedded_relation(con, x[:95]), None, SETTINGS)
    grown = project_incremental(con, embedded_relation(con, x[:112]), first, SETTINGS)
    assert "new" in grown["projection_source"].to_pylist()  # 17 of 95 added: projected
    capsys.readouterr()
    again = project_incremental(con, embedded_relation(con, x[:120]), grown, SETTINGS)
    assert "25 texts added since the fit" in capsys.readouterr().err  # 17 + 8 > 20 % of 95
    assert "new" not in again["projection_source"].to_pylist()


@pytest.mark.parametrize(
    "change, reason",
    [
        ("refit", "var refit"),
        ("settings", "settings changed"),
        ("removed", "removed or changed"),
        ("many_new", "refit_new_share"),
    ],
)
def test_refit_when_the_fit_is_no_longer_valid(change, reason, capsys):
    x, _ = gaussian_groups(n_per_group=40)
    con = duckdb.connect()
    first = project_incremental(con, embedded_relation(con, x[:100]), None, SETTINGS)
    rows, settings, refit = x[:100], SETTINGS, False
    if change == "refit":
        refit = True
    elif change == "settings":
        settings = ProjectionSettings(n_neighbors=9, metric="euclidean", max_fit_rows=80)
    elif change == "removed":
        fitted = first.filter(pa.compute.equal(first["projection_source"], "fit"))
        drop = int(fitted["text_id"][0].as_py()[2:])
        rows = np.delete(x[:100], drop, axis=0)
        ids = [f"id{i:04d}" for i in range(100) if i != drop]
    else:
        rows = np.concatenate([x, x[:1] + 0.01])  # 21 new texts > 20 % of the last fit
    ids = ids if change == "removed" else None
    capsys.readouterr()
    out = project_incremental(con, embedded_relation(con, rows, ids), first, settings, refit=refit)
    assert reason in capsys.readouterr().err
    assert "new" not in out["projection_source"].to_pylist()


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "manhattan"])
@pytest.mark.parametrize("group", [1, 4, 64])  # 300 rows: 300, 75 (padded), 5 (< k) groups
def test_blocked_knn_matches_scikit_learn(metric, group):
    from sklearn.neighbors import NearestNeighbors

    from text_clustering.knn import ExactKNN

    rng = np.random.default_rng(3)
    reference = rng.normal(size=(300, 12)).astype(np.float32)
    queries = rng.normal(size=(50, 12)).astype(np.float32)
    index = ExactKNN(reference, metric=metric, block=16, group=group)
    distances, indices = index.query(queries, 7)
    expected_d, expected_i = (
        NearestNeighbors(n_neighbors=7, metric=metric, algorithm="brute")
        .fit(reference)
        .kneighbors(queries)
    )
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("block", [7, 64, 4096])
def test_self_knn_matches_scikit_learn(metric, block):
    # blocks that do not divide n, one block, and many must all give the exact neighbours
    from sklearn.neighbors import NearestNeighbors

    x = np.random.default_rng(5).normal(size=(150, 9)).astype(np.float32)
    distances, indices = exact_knn(x, 6, metric=metric, block=block)
    expected_d, expected_i = (
        NearestNeighbors(n_neighbors=6, metric=metric, algorithm="brute").fit(x).kneighbors(x)
    )
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_allclose(distances, expected_d, rtol=1e-4, atol=1e-4)
    from text_clustering.knn import ExactKNN  # the same with the top-k taken by groups

    grouped = ExactKNN(x, metric=metric, block=block, group=4).query(x, 6, offset=0)
    np.testing.assert_array_equal(grouped[1], expected_i)


def test_self_knn_lists_each_point_first_even_among_duplicates():
    x = np.repeat(np.eye(3, dtype=np.float32), 2, axis=0)  # every row twice
    distances, indices = exact_knn(x, 2)
    np.testing.assert_array_equal(indices[:, 0], np.arange(6))
    np.testing.assert_array_equal(indices[:, 1], [1, 0, 3, 2, 5, 4])
    np.testing.assert_allclose(distances, 0, atol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_knn_gives_the_same_bits_on_any_number_of_workers(metric):
    # every block's product runs on one BLAS thread, whichever worker takes it
    x = np.random.default_rng(8).normal(size=(700, 24)).astype(np.float32)
    one = exact_knn(x, 9, metric=metric, block=64, threads=1)
    for threads in (2, 3):
        many = exact_knn(x, 9, metric=metric, block=64, threads=threads)
        np.testing.assert_array_equal(many[0], one[0])
        np.testing.assert_array_equal(many[1], one[1])


def test_exact_knn_holds_blas_to_one_thread_on_any_thread():
    # dbt runs each model on a thread of its own, and threadpoolctl's limits act on OpenBLAS
    # only in the thread that set one first: the kNN must not depend on it (its products'
    # bits depend on BLAS's threads); the graph was once 2 ulps off in a dbt build
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import ThreadpoolController

    from text_clustering.runtime import one_blas_thread

    x = np.random.default_rng(9).normal(size=(2000, 64)).astype(np.float32)
    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    before = [library.get_num_threads() for library in blas]
    with one_blas_thread():
        assert all(library.get_num_threads() == 1 for library in blas)
        expected = exact_knn(x, 8, block=256, threads=1)
    assert [library.get_num_threads() for library in blas] == before  # restored
    owner = ThreadPoolExecutor(1)  # a thread that takes threadpoolctl's control, as dbt's do
    owner.submit(lambda: __import__("threadpoolctl").threadpool_limits(limits=2)).result()
    try:
        found = {}
        worker = threading.Thread(target=lambda: found.update(g=exact_knn(x, 8, block=256)))
        worker.start()
        worker.join()
    finally:
        owner.shutdown()
    np.testing.assert_array_equal(found["g"][0], expected[0])
    np.testing.assert_array_equal(found["g"][1], expected[1])


def test_equal_scores_are_listed_by_column_the_same_every_time():
    from text_clustering.knn import ExactKNN

    reference = np.tile(np.eye(4, dtype=np.float32), (50, 1))  # rows 0, 4, 8, ... alike
    for group in (1, 4, 64):
        index = ExactKNN(reference, block=16, group=group)
        distances, indices = index.query(reference[:3], 5)
        np.testing.assert_allclose(distances, 0, atol=1e-6)
        assert (indices % 4 == np.arange(3)[:, None]).all()  # the row's 50 equals
        assert (np.diff(indices, axis=1) > 0).all()  # in column order
        again = index.query(reference[:3], 5)[1]
        np.testing.assert_array_equal(again, indices)


def test_the_projection_does_not_load_torch():
    # the exact kNN is NumPy's: a build whose vectors are given or embedded with onnx never
    # pays torch's import (~1.5-2.4 s on one core)
    from dbt_helpers import python_output

    code = (
        "import sys, numpy as np; from text_clustering.projection import UMAPProjector; "
        "x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32); "
        "p = UMAPProjector(n_neighbors=5).fit(x[:40]); p.transform(x[40:]); "
        "print('torch' in sys.modules)"
    )
    assert python_output(code) == "False"


def test_umap_preloaded_on_a_thread_serves_the_fit_without_a_second_import():
    # the embedding step starts it on a first build; a fit that comes while it still runs
    # waits for it (cached_jit's lock), one that comes later finds umap imported
    from dbt_helpers import python_output

    code = (
        "import sys, numpy as np; from text_clustering.steps.projection import preload_layout; "
        "from text_clustering.projection import UMAPProjector; "
        "thread = preload_layout(); print(thread is not None, preload_layout() is None); "
        "x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32); "
        "fitted = UMAPProjector(n_neighbors=5).fit(x); thread.join(); "
        "print(fitted.method_, 'umap' in sys.modules, preload_layout() is None)"
    )
    assert python_output(code, timeout=120).split() == ["True", "True", "umap", "True", "True"]


def test_the_embedding_step_preloads_umap_on_a_first_build_only(monkeypatch):
    from text_clustering.steps import embedding

    calls = []
    monkeypatch.setattr(embedding, "preload_layout", lambda: calls.append(1))
    con = duckdb.connect()
    texts = con.sql(
        "select 'a' as text_id, 1 as source_row, true as is_embeddable, 'hello' as text"
    )
    vectors = con.sql("select 1 as source_row, [1.0, 2.0]::float[] as precomputed_embedding")
    config = {"embedding_model": "m", "embedding_column": "vector"}
    first = embedding.embedded_texts(con, None, texts, None, vectors, config)
    first.create("embedded")
    assert calls == [1]
    embedding.embedded_texts(con, "embedded", texts, None, vectors, config)
    assert calls == [1]  # a rebuild mostly reuses the fit: nothing preloaded


def test_embeddings_reader_returns_the_rows_asked_for_in_their_order():
    con = duckdb.connect()
    embedded = con.sql(
        "select * from (values ('a', [1, 0]::FLOAT[2]), ('b', [0, 1]::FLOAT[2]), "
        "('c', [1, 1]::FLOAT[2])) t(text_id, embedding)"
    )
    read = embeddings_reader(con, embedded)
    np.testing.assert_array_equal(read(pa.array(["c", "a"])), [[1, 1], [1, 0]])
    with pytest.raises(AssertionError, match="1 text"):
        read(pa.array(["a", "zz"]))
