"""Layers of topics above the clusters: agglomerative merging of the clusters' centroids.

Level 0 is the clustering as given (ids ``>= 0``, ``-1`` = noise). The level-0 clusters are
merged bottom-up in the embedding space, two at a time, by ``linkage``:

- ``ward`` (default): the pair whose merge raises the within-topic sum of squares least,
  ``n_a n_b / (n_a + n_b) * |m_a - m_b|^2`` with ``m`` the mean unit vector of a topic's texts
  and ``n`` its text count, so large topics are weighted by their size;
- ``average``: the pair with the smallest mean cosine distance between their texts,
  ``1 - m_a . m_b`` (exact: the mean of ``1 - u . v`` over all pairs of texts).

Both are computed from a topic's mean and size, so merging two topics is exact and costs one
row of ``k`` distances. The merge tree is cut into layers: level ``l`` has about
``n_topics_[l - 1] / reduction`` topics (rounded), until a layer has ``max_top_topics`` or
fewer. Layers nest by construction: a level-``l`` topic is a union of level-``(l - 1)``
topics. Noise stays noise at every level. Merges are deterministic (ties go to the lowest
index), and topic ids at every level are numbered by text count, largest first (ties by their
smallest level-0 id).

The headline level (the one to show first) is chosen among the levels with
``min_headline_topics`` to ``max_headline_topics`` topics (3 to 30):

- ``headline="separation"`` (default): the best-separated one, the highest mean silhouette
  (cosine distance in the embedding space; noise left out) on ``sample_size`` clustered texts
  drawn with ``random_state`` (ties: the coarser level);
- ``headline="nearest"``: the one whose count is nearest to the middle of the range
  (geometric mean, log scale; ties: the coarser level).

When no level is in the range, it is the level whose count is nearest to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigError, InputError

NOISE = -1
LINKAGES = ("ward", "average")
HEADLINES = ("separation", "nearest")


class TopicHierarchy:
    """Nested layers of topics over a clustering, scikit-learn style.

    ``TopicHierarchy().fit(vectors, labels)`` with ``vectors`` ``(n, d)`` embeddings and
    ``labels`` ``(n,)`` level-0 cluster ids (``-1`` = noise). Learned:

    - ``n_levels_``: levels including level 0;
    - ``n_topics_``: ``(n_levels_,)`` topics per level (level 0 counts its distinct ids);
    - ``parents_``: ``n_levels_ - 1`` int arrays; ``parents_[l - 1][i]`` is the level-``l``
      topic of level-``(l - 1)`` topic ``i`` (``parents_[0]`` has ``labels.max() + 1``
      entries, ``-1`` for ids without texts);
    - ``sizes_``: per level, the text count of every topic, ``(n_topics_[l],)`` (level 0:
      ``(labels.max() + 1,)``, by cluster id);
    - ``merge_heights_``: ``(k - 1,)`` linkage distance of every merge, in merge order
      (empty when there is no level above level 0: nothing is merged);
    - ``separation_``: ``(n_levels_,)`` mean silhouette of every level in the headline range
      (NaN outside it, with ``headline="nearest"``, or when only one level is in range);
    - ``headline_level_``: the level to show first.

    ``transform(labels)`` gives every text's topic at every level, ``(n, n_levels_)``.
    """

    def __init__(
        self,
        *,
        linkage: str = "ward",
        reduction: float = 2.5,
        max_top_topics: int = 12,
        headline: str = "separation",
        min_headline_topics: int = 3,
        max_headline_topics: int = 30,
        sample_size: int = 3000,
        random_state: int | None = 42,
    ) -> None:
        self.linkage = linkage
        self.reduction = reduction
        self.max_top_topics = max_top_topics
        self.headline = headline
        self.min_headline_topics = min_headline_topics
        self.max_headline_topics = max_headline_topics
        self.sample_size = sample_size
        self.random_state = random_state

    def fit(self, vectors: Any, labels: Any) -> TopicHierarchy:
        """Merge the clusters of ``labels`` ``(n,)`` by the rows of ``vectors`` ``(n, d)``."""
        self._check_params()
        vectors, labels = check_input(vectors, labels)
        ids = np.unique(labels[labels != NOISE])
        means, counts = topic_means(vectors, labels, ids)
        targets = layer_counts(
            ids.size, reduction=self.reduction, max_top_topics=self.max_top_topics
        )
        if targets:
            pairs, heights = agglomerate(means, counts, linkage=self.linkage)
        else:  # few enough clusters: level 0 is the top, nothing to merge
            pairs, heights = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
        groups = [_number_by_size(cut_tree(pairs, ids.size, t), counts) for t in targets]
        n_ids = int(ids.max()) + 1 if ids.size else 0
        self.parents_ = _parents(ids, n_ids, groups, targets)
        self.n_topics_ = np.array([ids.size, *targets], dtype=np.int64)
        self.n_levels_ = int(self.n_topics_.size)
        level0 = np.zeros(n_ids, dtype=np.int64)
        level0[ids] = counts
        self.sizes_ = [level0] + [
            np.bincount(g, weights=counts, minlength=t).astype(np.int64)
            for g, t in zip(groups, targets, strict=True)
        ]
        self.merge_heights_ = heights
        self.separation_ = self._separation(vectors, labels)
        self.headline_level_ = headline_level(
            self.n_topics_, self.separation_, self.min_headline_topics, self.max_headline_topics
        )
        return self

    def _separation(self, vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``separation_``: silhouette of the levels in the headline range (see the class)."""
        scores = np.full(self.n_levels_, np.nan)
        low, high = self.min_headline_topics, self.max_headline_topics
        levels = np.flatnonzero((self.n_topics_ >= low) & (self.n_topics_ <= high))
        if self.headline == "separation" and levels.size > 1:
            topics = self.transform(labels)[:, levels]
            scores[levels] = separation(vectors, topics, self.sample_size, self.random_state)
        return scores

    def transform(self, labels: Any) -> np.ndarray:
        """Topic id of every text at every level: ``(n, n_levels_)`` int64, column ``l`` =
        level ``l`` (column 0 = ``labels``), ``-1`` for noise at every level."""
        if not hasattr(self, "parents_"):
            raise ConfigError("TopicHierarchy is not fitted: call fit(vectors, labels) first.")
        labels = _check_labels(labels)
        known = self.sizes_[0].size
        if labels.size and int(labels.max()) >= known:
            raise InputError(
                f"`labels` has cluster id {int(labels.max())}, unknown to the fitted hierarchy "
                f"(ids 0..{known - 1}): transform the clustering it was fitted on."
            )
        out = np.full((labels.size, self.n_levels_), NOISE, dtype=np.int64)
        out[:, 0] = labels
        for level, parent in enumerate(self.parents_, start=1):
            below = out[:, level - 1]
            out[:, level] = np.where(below >= 0, parent[np.maximum(below, 0)], NOISE)
        return out

    def fit_transform(self, vectors: Any, labels: Any) -> np.ndarray:
        """``fit(vectors, labels).transform(labels)``."""
        return self.fit(vectors, labels).transform(labels)

    def _check_params(self) -> None:
        if self.linkage not in LINKAGES:
            raise ConfigError(
                f"TopicHierarchy `linkage` must be one of {', '.join(LINKAGES)}, "
                f"got {self.linkage!r}."
            )
        if isinstance(self.reduction, bool) or not isinstance(self.reduction, int | float):
            raise ConfigError(
                f"TopicHierarchy `reduction` must be a number, got {self.reduction!r}."
            )
        if not self.reduction > 1.0 or not np.isfinite(self.reduction):
            raise ConfigError(
                f"TopicHierarchy `reduction` must be > 1 (topics per level shrink by this "
                f"factor), got {self.reduction!r}; e.g. 2.5."
            )
        if self.headline not in HEADLINES:
            raise ConfigError(
                f"TopicHierarchy `headline` must be one of {', '.join(HEADLINES)}, "
                f"got {self.headline!r}."
            )
        for name in ("max_top_topics", "min_headline_topics", "max_headline_topics"):
            _check_int(name, getattr(self, name), 1)
        _check_int("sample_size", self.sample_size, 2)
        if self.min_headline_topics > self.max_headline_topics:
            raise ConfigError(
                f"TopicHierarchy `min_headline_topics` ({self.min_headline_topics}) must not "
                f"exceed `max_headline_topics` ({self.max_headline_topics})."
            )
        if self.random_state is not None:
            _check_int("random_state", self.random_state, 0)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(
            f"TopicHierarchy `{name}` must be an integer >= {minimum}, got {value!r}."
        )


def _parents(
    ids: np.ndarray, n_ids: int, groups: list[np.ndarray], targets: list[int]
) -> list[np.ndarray]:
    """``parents_`` from ``groups[l]`` ``(k,)`` (level-0 topic in ``ids`` order -> its
    level-``(l + 1)`` topic); level 0 is indexed by cluster id (``n_ids`` entries)."""
    parents = []
    for level, group in enumerate(groups):
        finer = ids if level == 0 else groups[level - 1]
        parent = np.full(n_ids if level == 0 else targets[level - 1], NOISE, dtype=np.int64)
        parent[finer] = group
        parents.append(parent)
    return parents


def _check_labels(labels: Any) -> np.ndarray:
    """``labels`` as a 1-D int64 array of ids ``>= -1`` (raises :class:`InputError`)."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise InputError(
            f"`labels` must be 1-D (one cluster id per text), got shape {array.shape}."
        )
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"`labels` must hold integer cluster ids, got dtype {array.dtype}.")
    array = array.astype(np.int64)
    if array.size and int(array.min()) < NOISE:
        raise InputError(
            f"`labels` must be cluster ids >= 0 or -1 for noise, got {int(array.min())}."
        )
    return array


def check_input(vectors: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(unit-length float32 vectors (n, d), int64 labels (n,))``."""
    labels = _check_labels(labels)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise InputError(
            f"`vectors` must be a 2-D numeric array (n texts, d dimensions), got shape "
            f"{vectors.shape} and dtype {vectors.dtype}."
        )
    if vectors.shape[0] != labels.size:
        raise InputError(
            f"`vectors` has {vectors.shape[0]} rows but `labels` has {labels.size}: give one "
            "label per row."
        )
    vectors = vectors.astype(np.float32, copy=False)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.isfinite(norms).all():
        raise InputError("`vectors` has NaN or infinite values: embed those texts again.")
    return vectors / np.where(norms > 0, norms, 1.0), labels


def topic_means(
    vectors: np.ndarray, labels: np.ndarray, ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector ``(k, d)`` float64 and text count ``(k,)`` of each id of ``ids`` (sorted,
    all present in ``labels``)."""
    from scipy.sparse import csr_matrix

    kept = np.flatnonzero(labels != NOISE)
    index = np.searchsorted(ids, labels[kept])
    counts = np.bincount(index, minlength=ids.size).astype(np.float64)
    members = csr_matrix(
        (np.ones(kept.size, dtype=np.float32), (index, kept)), shape=(ids.size, labels.size)
    )
    sums = np.asarray(members @ vectors, dtype=np.float64)
    return sums / np.maximum(counts, 1.0)[:, None], counts


def _distances(means: np.ndarray, counts: np.ndarray, row: int, linkage: str) -> np.ndarray:
    """Linkage distance ``(k,)`` from topic ``row`` to every topic."""
    if linkage == "average":
        return 1.0 - means @ means[row]
    from scipy.spatial.distance import cdist

    # one C loop per pair, summed in the same order either way round: a distance is the
    # same bit for bit from both its topics (``_DistanceRows`` relies on it), and ~4x
    # faster than numpy's (k, d) difference, squared and summed
    squared = cdist(means[row : row + 1], means, "sqeuclidean")[0]
    return counts * counts[row] / (counts + counts[row]) * squared


def agglomerate(
    means: np.ndarray, counts: np.ndarray, *, linkage: str = "ward"
) -> tuple[np.ndarray, np.ndarray]:
    """Merge ``k`` topics (``means`` ``(k, d)``, ``counts`` ``(k,)``) down to one.

    Nearest-neighbour chain (exact for ward and average linkage). Returns ``(pairs, heights)``:
    ``pairs`` ``(k - 1, 2)`` a level-0 index in each merged topic, ``heights`` ``(k - 1,)``
    the linkage distance of each merge, both sorted by height (stable). Rows of distances
    are computed once and kept (up to :data:`MAX_CACHED_TOPICS` topics): a merge recomputes
    only the merged topic's row, so the chain's steps cost a lookup, not a ``(k, d)`` pass."""
    k = means.shape[0]
    means, counts = means.copy(), counts.astype(np.float64).copy()
    active = np.ones(k, dtype=bool)
    rows = _DistanceRows(means, counts, linkage)
    pairs: list[tuple[int, int]] = []
    heights: list[float] = []
    chain: list[int] = []
    while len(pairs) < k - 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        row = np.where(active, rows[a], np.inf)
        row[a] = np.inf
        b = int(np.argmin(row))
        if len(chain) > 1 and row[chain[-2]] <= row[b]:
            b = chain[-2]  # a and the previous link are reciprocal nearest neighbours
        if len(chain) > 1 and b == chain[-2]:
            chain = chain[:-2]
            low, high = min(a, b), max(a, b)
            pairs.append((low, high))
            heights.append(float(row[b]))
            total = counts[low] + counts[high]
            means[low] = (counts[low] * means[low] + counts[high] * means[high]) / total
            counts[low], active[high] = total, False
            rows.changed(low)
        else:
            chain.append(b)
    order = np.argsort(np.asarray(heights), kind="stable")
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)[order], np.asarray(heights)[order]


MAX_CACHED_TOPICS = 8192  # k x k float64 distances kept: at most 512 MB


class _DistanceRows:
    """``rows[a]``: the linkage distances ``(k,)`` from topic ``a`` to every topic, as
    :func:`_distances` gives them (and bit for bit: a distance is symmetric in its two
    topics), kept in a ``(k, k)`` table filled row by row when ``k`` is small enough.
    ``changed(a)`` after topic ``a``'s mean or count changed."""

    def __init__(self, means: np.ndarray, counts: np.ndarray, linkage: str) -> None:
        self.means, self.counts, self.linkage = means, counts, linkage
        k = means.shape[0]
        self.table = np.empty((k, k)) if k <= MAX_CACHED_TOPICS else None
        self.known = np.zeros(k, dtype=bool)

    def __getitem__(self, a: int) -> np.ndarray:
        if self.table is None:
            return _distances(self.means, self.counts, a, self.linkage)
        if not self.known[a]:
            self.table[a] = _distances(self.means, self.counts, a, self.linkage)
            self.known[a] = True
        return self.table[a]

    def changed(self, a: int) -> None:
        if self.table is not None:
            self.known[a] = False
            fresh = self[a]
            self.table[self.known, a] = fresh[self.known]  # the other known rows' column a


def cut_tree(pairs: np.ndarray, k: int, n_groups: int) -> np.ndarray:
    """Group ``(k,)`` of each level-0 topic after the first ``k - n_groups`` merges of
    ``pairs`` (union-find); groups numbered by their smallest member."""
    root = np.arange(k)

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = int(root[i])
        return i

    for a, b in pairs[: k - n_groups]:
        ra, rb = find(int(a)), find(int(b))
        root[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(k)], dtype=np.int64)
    return np.unique(roots, return_inverse=True)[1]


def _number_by_size(groups: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Renumber ``groups`` ``(k,)`` by text count, largest first (ties: smallest member)."""
    sizes = np.bincount(groups, weights=counts)
    first = np.full(sizes.size, groups.size)
    np.minimum.at(first, groups, np.arange(groups.size))
    order = np.lexsort((first, -sizes))
    rank = np.empty(sizes.size, dtype=np.int64)
    rank[order] = np.arange(sizes.size)
    return rank[groups]


def layer_counts(k: int, *, reduction: float = 2.5, max_top_topics: int = 12) -> list[int]:
    """Topic counts of levels 1.. over ``k`` level-0 topics: each the previous one divided by
    ``reduction`` (rounded), until one is ``<= max_top_topics``. Empty when ``k`` is already
    ``<= max_top_topics``. Strictly decreasing, each ``>= 1``."""
    counts: list[int] = []
    current = k
    while current > max_top_topics and current > 1:
        current = min(max(1, round(current / reduction)), current - 1)
        counts.append(current)
    return counts


def separation(
    vectors: np.ndarray, topics: np.ndarray, sample_size: int, random_state: int | None
) -> np.ndarray:
    """Mean silhouette (cosine) ``(m,)`` of each column of ``topics`` ``(n, m)`` on the same
    sample of at most ``sample_size`` clustered rows of ``vectors`` ``(n, d)`` (unit length).
    A column with fewer than 2 topics in the sample scores -1."""
    from sklearn.metrics import silhouette_score

    clustered = np.flatnonzero(topics[:, 0] != NOISE)
    rng = np.random.default_rng(random_state)
    if clustered.size > sample_size:
        clustered = np.sort(rng.choice(clustered, size=sample_size, replace=False))
    sample = vectors[clustered].astype(np.float64)
    distances = np.clip(1.0 - sample @ sample.T, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    scores = []
    for column in topics[clustered].T:
        n_labels = np.unique(column).size
        valid = 1 < n_labels < column.size
        scores.append(silhouette_score(distances, column, metric="precomputed") if valid else -1)
    return np.asarray(scores, dtype=np.float64)


def headline_level(n_topics: np.ndarray, separation: np.ndarray, low: int, high: int) -> int:
    """The level to show first: among levels with ``low..high`` topics, the one with the
    highest ``separation`` (NaN = not scored), else the one nearest ``sqrt(low * high)`` on
    a log scale; with none in range, the one nearest the range. Ties: the coarser level."""
    counts = np.maximum(n_topics, 1).astype(np.float64)
    in_range = (counts >= low) & (counts <= high)
    if in_range.any() and np.isfinite(separation[in_range]).any():
        score = np.where(in_range & np.isfinite(separation), separation, -np.inf)
    elif in_range.any():
        score = np.where(in_range, -np.abs(np.log(counts) - 0.5 * np.log(low * high)), -np.inf)
    else:
        score = -np.minimum(np.abs(np.log(counts / low)), np.abs(np.log(counts / high)))
    best = np.flatnonzero(score >= score.max() - 1e-12)
    return int(best[-1])
