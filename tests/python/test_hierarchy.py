import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from text_clustering.errors import ConfigError, InputError
from text_clustering.hierarchy import TopicHierarchy, headline_level


def planted(n_groups=4, per_group=5, per_cluster=20, noise_every=13, spread=1.0, seed=0):
    """Texts in ``n_groups`` far-apart groups of ``per_group`` close clusters each.
    Returns ``(vectors (n, 32), level-0 labels (n,), group of each text (n,))``; every
    ``noise_every``-th text is noise (-1); ``spread`` is the scale of the clusters within
    a group (the groups' is 3, a text's around its cluster 0.1)."""
    rng = np.random.default_rng(seed)
    groups = rng.normal(size=(n_groups, 32)) * 3.0
    offsets = spread * rng.normal(size=(n_groups * per_group, 32))
    clusters = np.repeat(groups, per_group, axis=0) + offsets
    labels = np.repeat(np.arange(n_groups * per_group), per_cluster)
    vectors = clusters[labels] + 0.1 * rng.normal(size=(labels.size, 32))
    group = labels // per_group
    labels = labels.copy()
    labels[::noise_every] = -1
    return vectors, labels, group


def test_first_layer_recovers_the_planted_groups():
    vectors, labels, group = planted()
    model = TopicHierarchy(reduction=5.0, max_top_topics=4).fit(vectors, labels)
    assert list(model.n_topics_) == [20, 4]
    topics = model.transform(labels)[:, 1]
    kept = labels != -1
    assert adjusted_rand_score(group[kept], topics[kept]) == 1.0


@pytest.mark.parametrize("linkage", ["ward", "average"])
def test_layers_nest_and_noise_stays_noise(linkage):
    vectors, labels, _ = planted(n_groups=6, per_group=8, per_cluster=10)
    model = TopicHierarchy(linkage=linkage, reduction=3.0).fit(vectors, labels)
    topics = model.transform(labels)
    assert topics.shape == (labels.size, model.n_levels_)
    assert model.n_levels_ >= 3 and len(model.parents_) == model.n_levels_ - 1
    np.testing.assert_array_equal(topics[:, 0], labels)
    assert (topics[labels == -1] == -1).all() and (topics[labels != -1] >= 0).all()
    for level in range(1, model.n_levels_):
        below, above = topics[:, level - 1], topics[:, level]
        kept = below >= 0
        # every child has exactly one parent, and it is the one parents_ names
        np.testing.assert_array_equal(above[kept], model.parents_[level - 1][below[kept]])
        children = {(b, a) for b, a in zip(below[kept], above[kept], strict=True)}
        assert len(children) == len({b for b, _ in children}) == model.n_topics_[level - 1]
        # a parent's size is the sum of its children's; ids 0..n-1, largest first
        sizes = model.sizes_[level]
        np.testing.assert_array_equal(sizes, np.bincount(above[kept]))
        assert sizes.size == model.n_topics_[level] and (np.diff(sizes) <= 0).all()
    assert (np.diff(model.n_topics_) < 0).all()


def test_top_layer_has_at_most_max_top_topics_and_the_one_below_more():
    vectors, labels, _ = planted(n_groups=10, per_group=10, per_cluster=5)
    for top in (1, 3, 12):
        model = TopicHierarchy(max_top_topics=top).fit(vectors, labels)
        assert model.n_topics_[-1] <= top < model.n_topics_[-2]


def test_no_layers_above_when_there_are_few_clusters_or_only_noise():
    vectors, labels, _ = planted(n_groups=2, per_group=3)
    model = TopicHierarchy(max_top_topics=12).fit(vectors, labels)
    assert list(model.n_topics_) == [6] and model.parents_ == [] and model.headline_level_ == 0
    assert model.merge_heights_.size == 0  # nothing merged
    only_noise = TopicHierarchy().fit(vectors, np.full(labels.size, -1))
    assert list(only_noise.n_topics_) == [0]
    assert (only_noise.transform(np.full(3, -1)) == -1).all()


def test_deterministic_and_independent_of_row_order():
    vectors, labels, _ = planted(n_groups=5, per_group=6, per_cluster=8)
    first = TopicHierarchy().fit(vectors, labels)
    again = TopicHierarchy().fit(vectors, labels)
    order = np.random.default_rng(1).permutation(labels.size)
    shuffled = TopicHierarchy().fit(vectors[order], labels[order])
    for model in (again, shuffled):
        assert list(model.n_topics_) == list(first.n_topics_)
        assert model.headline_level_ == first.headline_level_
        for a, b in zip(model.parents_, first.parents_, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.separation_, first.separation_)  # same sample


def test_headline_is_the_best_separated_level_in_range():
    grouped = planted(n_groups=4, per_group=5, spread=0.3)  # 20 clusters, 4 far-apart groups
    flat = planted(n_groups=20, per_group=1)  # 20 unrelated clusters
    for (vectors, labels, _), expected in ((grouped, 1), (flat, 0)):
        model = TopicHierarchy(reduction=5.0, max_top_topics=4).fit(vectors, labels)
        assert list(model.n_topics_) == [20, 4]
        assert model.headline_level_ == expected
        assert np.argmax(model.separation_) == expected
    # a level outside min/max_headline_topics is never the headline
    vectors, labels, _ = grouped
    model = TopicHierarchy(reduction=5.0, max_top_topics=4, min_headline_topics=5)
    assert model.fit(vectors, labels).headline_level_ == 0


def test_headline_nearest_is_the_level_nearest_the_middle_of_the_range():
    vectors, labels, _ = planted(n_groups=8, per_group=10, per_cluster=5)
    model = TopicHierarchy(reduction=2.0, max_top_topics=5, headline="nearest")
    model.fit(vectors, labels)
    assert list(model.n_topics_) == [80, 40, 20, 10, 5]
    assert model.headline_level_ == 3 and np.isnan(model.separation_).all()
    nan = np.full(3, np.nan)
    # 3..27: middle 9; 3 and 27 are as far from it on a log scale: the coarser wins
    assert headline_level(np.array([80, 27, 3]), nan, 3, 27) == 2
    # nothing in range: the level nearest to it
    assert headline_level(np.array([300, 60, 40]), nan, 3, 30) == 2
    assert headline_level(np.array([2, 1]), nan[:2], 3, 30) == 0


def test_ids_without_texts_have_no_parent():
    vectors, labels, _ = planted(n_groups=4, per_group=5)
    labels = np.where(labels == 3, -1, labels)  # cluster 3 lost all its texts
    model = TopicHierarchy(max_top_topics=4).fit(vectors, labels)
    assert model.parents_[0][3] == -1 and model.sizes_[0][3] == 0
    assert model.n_topics_[0] == 19


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"linkage": "single"}, "linkage"),
        ({"reduction": 1.0}, "reduction"),
        ({"reduction": "4"}, "reduction"),
        ({"max_top_topics": 0}, "max_top_topics"),
        ({"headline": "largest"}, "headline"),
        ({"min_headline_topics": 2.5}, "min_headline_topics"),
        ({"min_headline_topics": 40}, "min_headline_topics"),
        ({"sample_size": 1}, "sample_size"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_bad_settings_raise_config_error_naming_them_in_fit(params, name):
    vectors, labels, _ = planted()
    model = TopicHierarchy(**params)  # stored as given, checked in fit
    assert all(getattr(model, k) == v for k, v in params.items())
    with pytest.raises(ConfigError, match=f"`{name}`"):
        model.fit(vectors, labels)


@pytest.mark.parametrize(
    ("vectors", "labels", "name"),
    [
        (np.ones(4), [0, 0, 1, 1], "vectors"),
        (np.ones((4, 3)), [0, 0, 1], "labels"),
        (np.ones((4, 3)), [0, 0, 1, -2], "labels"),
        (np.ones((4, 3)), [0.0, 0.5, 1.0, 1.0], "labels"),
        (np.ones((4, 3)), [[0, 0, 1, 1]], "labels"),
        (np.array([[1.0, np.nan], [1.0, 0.0]]), [0, 1], "vectors"),
    ],
)
def test_bad_input_raises_input_error_naming_the_argument(vectors, labels, name):
    with pytest.raises(InputError, match=f"`{name}`"):
        TopicHierarchy().fit(vectors, labels)


def test_transform_needs_a_fit_and_known_ids():
    vectors, labels, _ = planted()
    with pytest.raises(ConfigError, match="not fitted"):
        TopicHierarchy().transform(labels)
    model = TopicHierarchy().fit(vectors, labels)
    with pytest.raises(InputError, match="`labels` has cluster id 20"):
        model.transform(np.array([0, 20]))


@pytest.mark.parametrize("linkage", ["ward", "average"])
def test_agglomeration_matches_scipy_and_its_distances_are_symmetric(linkage):
    # the cached distance table fills a row's column from the other row: the distance must
    # be the same bit for bit from both topics; the merges those of scipy's linkage
    from scipy.cluster.hierarchy import linkage as scipy_linkage

    from text_clustering.hierarchy import _distances, agglomerate

    rng = np.random.default_rng(3)
    means = rng.normal(size=(60, 16))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    counts = np.ones(60)
    table = np.stack([_distances(means, counts, row, linkage) for row in range(60)])
    assert np.array_equal(table, table.T)
    _, heights = agglomerate(means, counts, linkage=linkage)
    metric = "euclidean" if linkage == "ward" else "cosine"
    expected = scipy_linkage(means, method=linkage, metric=metric)[:, 2]
    if linkage == "ward":  # ours is the increase in the sum of squares: scipy's d^2 / 2
        expected = expected**2 / 2
    np.testing.assert_allclose(np.sort(heights), np.sort(expected), rtol=1e-9, atol=1e-12)
