"""The topic hierarchy steps: layers of topics above the clusters, and their keywords.

- :func:`topic_tree` (int_topic_tree): a :class:`~text_clustering.hierarchy.TopicHierarchy`
  fitted on the texts the clusters were fitted on; one row per (level, topic) with its
  parent one level up, and the headline level (var headline_level, or the hierarchy's own
  choice). Kept while those texts, their clusters and the settings are unchanged, so new
  texts assigned to a cluster inherit its path and only a refit recomputes the layers. Then
  every level's topics are matched to the previous build's by their texts, as the clusters
  are (:func:`~text_clustering.lineage.match_clusters`): a topic that continues one keeps its
  id, the others get ids never used at that level (``next_topic_id``, the high-water mark).
- :func:`topic_keywords` (int_topic_keywords): c-TF-IDF keywords and keyword labels of every
  cluster (level 0; int_cluster_keywords is that level) and every topic above, from one
  count of the fitted texts' terms per cluster, summed up the tree.

Naming the topics, bottom-up, is the LLM step's (:mod:`~text_clustering.steps.llm`) and
:func:`~text_clustering.steps.naming.name_topics`'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..clustering import NOISE
from ..config import read_int, read_optional_int, read_str
from ..hierarchy import TopicHierarchy
from ..keywords import KeywordModel, label_from_keywords, term_counts, top_terms
from ..lineage import match_clusters
from ..log import log
from ..redact import check_classes, redact_all
from ..vectors import read_arrow
from .labelling import fitted_documents
from .projection import embeddings_reader
from .reuse import read_previous, reuse_or_build

TREE_SCHEMA = pa.schema(
    [
        ("topic_key", pa.string()),
        ("level", pa.int32()),
        ("topic_id", pa.int32()),
        ("parent_topic_id", pa.int32()),
        ("n_fit_texts", pa.int64()),
        ("is_headline", pa.bool_()),
        ("next_topic_id", pa.int32()),
    ]
)
TOPIC_KEYWORDS_SCHEMA = pa.schema(
    [
        ("topic_key", pa.string()),
        ("level", pa.int32()),
        ("topic_id", pa.int32()),
        ("top_keywords", pa.list_(pa.string())),
        ("keyword_labels", pa.list_(pa.string())),
    ]
)


@dataclass(frozen=True)
class HierarchySettings:
    """What the layers depend on (vars max_top_topics, headline_level)."""

    max_top_topics: int = 12
    headline_level: int | None = None  # None: the hierarchy's own choice
    random_state: int = 42

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HierarchySettings:
        return cls(
            max_top_topics=read_int("max_top_topics", config.get("max_top_topics"), minimum=1),
            headline_level=read_optional_int(
                "headline_level", config.get("headline_level"), minimum=0
            ),
            random_state=read_int("random_state", config.get("random_state")),
        )


def topic_tree(
    connection: Any, this: Any, clustered: Any, projected: Any, embedded: Any, config: Mapping
) -> pa.Table:
    """int_topic_tree, from the fitted texts' clusters and embeddings."""
    settings = HierarchySettings.from_config(config)
    fitted = projected.filter("projection_source = 'fit'").select("text_id")
    fitted_rows = clustered.join(fitted, "text_id")
    members = fitted_rows.select("text_id, cluster_label, embedding_hash")

    def build() -> pa.Table:
        # the previous build's clusters of the same texts match the topics (not fingerprinted:
        # they change with every refit, which the members' clusters already tell)
        columns = "text_id, cluster_label, previous_cluster_label"
        rows = read_arrow(fitted_rows.select(columns).order("text_id"))
        return build_tree(
            rows,
            embeddings_reader(connection, embedded),
            settings,
            previous_labels=pc.fill_null(rows["previous_cluster_label"], NOISE - 1)
            .to_numpy(zero_copy_only=False)
            .astype(np.int64),
            previous_tree=read_previous(connection, this, TREE_SCHEMA),
            next_cluster_id=int(
                clustered.aggregate(
                    "coalesce(max((cluster_fit ->> '$.next_id')::integer), max(cluster_label) + 1)"
                ).fetchall()[0][0]
                or 0
            ),
        )

    return reuse_or_build(connection, this, [members, settings], build)


def build_tree(
    rows: pa.Table,
    embeddings: Any,
    settings: HierarchySettings,
    *,
    previous_labels: np.ndarray | None = None,
    previous_tree: pa.Table | None = None,
    next_cluster_id: int | None = None,
) -> pa.Table:
    """int_topic_tree's rows from the fitted texts' ``(text_id, cluster_label)`` in
    ``text_id`` order; ``embeddings(text_ids)`` returns their vectors row for row (read only
    when there are levels to make). The topics get stable ids (:func:`stable_topic_ids`):
    matched to ``previous_tree`` through the texts' ``previous_labels`` after a refit, or
    numbered from 0 on a first fit (the defaults). The DuckDB step and the Spark driver both
    call it."""
    labels = rows["cluster_label"].to_numpy(zero_copy_only=False).astype(np.int64)
    kept = labels != NOISE
    ids = rows["text_id"].filter(pa.array(kept))
    if np.unique(labels[kept]).size <= settings.max_top_topics:  # no level to make
        vectors = np.zeros((len(ids), 1), np.float32)  # (no text: no cluster either)
    else:
        vectors = embeddings(ids)
    hierarchy = TopicHierarchy(
        max_top_topics=settings.max_top_topics, random_state=settings.random_state
    )
    hierarchy.fit(vectors, labels[kept])
    tree = tree_table(hierarchy, int((~kept).sum()), settings.headline_level)
    if previous_labels is None:
        previous_labels = np.full(labels.size, NOISE - 1, np.int64)
    if next_cluster_id is None:
        next_cluster_id = int(labels.max()) + 1 if labels.size else 0
    return stable_topic_ids(
        tree, labels, previous_labels, previous_tree, next_cluster_id=next_cluster_id
    )


def topic_key(level: int, topic: int) -> str:
    """The key of a (level, topic) row: ``"<level>:<topic>"``, e.g. ``"1:3"``, ``"2:-1"``."""
    return f"{level}:{topic}"


def tree_table(hierarchy: TopicHierarchy, n_noise: int, headline: int | None) -> pa.Table:
    """One row per (level, topic) of a fitted hierarchy, noise (-1) at every level."""
    top = hierarchy.n_levels_ - 1
    chosen = hierarchy.headline_level_ if headline is None else min(headline, top)
    if headline is not None and headline > top:
        log(f"topics: var headline_level={headline}, but there are levels 0..{top}: using {top}")
    rows = []
    for level in range(top + 1):
        sizes = hierarchy.sizes_[level]
        parent = hierarchy.parents_[level] if level < top else None
        for topic in [NOISE, *np.flatnonzero(sizes > 0).tolist()]:
            up = None if parent is None else (NOISE if topic == NOISE else int(parent[topic]))
            rows.append(
                {
                    "topic_key": topic_key(level, topic),
                    "level": level,
                    "topic_id": topic,
                    "parent_topic_id": up,
                    "n_fit_texts": n_noise if topic == NOISE else int(sizes[topic]),
                    "is_headline": level == chosen,
                    "next_topic_id": None,
                }
            )
    counts = ", ".join(str(int(n)) for n in hierarchy.n_topics_)
    log(f"topics: {top + 1} level(s) of {counts} topics; headline level {chosen}")
    return pa.Table.from_pylist(rows, schema=TREE_SCHEMA)


def stable_topic_ids(
    tree: pa.Table,
    labels: np.ndarray,
    previous_labels: np.ndarray,
    previous_tree: pa.Table | None,
    *,
    next_cluster_id: int,
) -> pa.Table:
    """``tree`` (the hierarchy's own numbering above level 0) with every level's topics
    matched to ``previous_tree``'s by their texts: ``labels`` and ``previous_labels`` are the
    fitted texts' clusters now and in the previous build (stable ids; ``NOISE - 1``: the
    text was not there). A topic continuing one keeps its id, the others get ids above the
    level's high-water mark, stored in ``next_topic_id`` (level 0: the clusters')."""
    rows = tree.to_pylist()
    now = cluster_paths(rows)
    old_rows = previous_tree.to_pylist() if previous_tree is not None else []
    old = cluster_paths(old_rows) if old_rows else []
    old_next = {r["level"]: r["next_topic_id"] or 0 for r in old_rows}
    existed = previous_labels != NOISE - 1
    ids: list[dict[int, int]] = [{}]
    next_ids = [next_cluster_id]
    for level in range(1, len(now)):
        current = np.array([now[level].get(c, NOISE) for c in labels.tolist()], np.int64)
        before = np.full(labels.size, NOISE, np.int64)
        if level < len(old):
            before = np.array(
                [old[level].get(c, NOISE) for c in previous_labels.tolist()], np.int64
            )
        match = match_clusters(
            before, current, next_id=old_next.get(level, 0), existed=existed & (level < len(old))
        )
        ids.append(match.ids)
        next_ids.append(match.next_id)
        kept = sum(1 for r in match.lineage if r["change"] == "survived")
        if old_rows:
            log(f"topics: level {level} matched to the previous build: {kept} keep their id")
    for row in rows:
        level, up = row["level"], row["level"] + 1
        row["topic_id"] = ids[level].get(row["topic_id"], row["topic_id"])
        if row["parent_topic_id"] is not None and up < len(ids):
            row["parent_topic_id"] = ids[up].get(row["parent_topic_id"], row["parent_topic_id"])
        row["topic_key"] = topic_key(level, row["topic_id"])
        row["next_topic_id"] = next_ids[level]
    return pa.Table.from_pylist(rows, schema=TREE_SCHEMA)


def topic_keywords(
    connection: Any,
    this: Any,
    clustered: Any,
    projected: Any,
    texts: Any,
    tree: Any,
    config: Mapping,
) -> pa.Table:
    """int_topic_keywords: per (level, topic), noise included at every level, its top
    c-TF-IDF keywords against the other topics of its level and var n keyword labels. The
    terms of the fitted texts are counted once, per cluster: level 0 (the clusters, which
    int_cluster_keywords shows) is those counts, a topic's counts are its clusters' sums.
    The texts are redacted first (var ``redact``): no private value becomes a keyword or a
    keyword label. Kept while the fitted texts, their clusters, the tree and vars n,
    default_label and redact are unchanged."""
    default_label = read_str("default_label", config.get("default_label"))
    assert default_label is not None
    model = KeywordModel(n=read_int("n", config.get("n"), minimum=1), default_label=default_label)
    private = check_classes(config.get("redact"))
    documents = fitted_documents(clustered, projected, texts)

    def build() -> pa.Table:
        return keyword_table(
            read_arrow(documents.order("text_id")), read_arrow(tree), model, private
        )

    settings = [model.n, model.default_label, list(private)]
    return reuse_or_build(connection, this, [documents, tree, *settings], build)


def keyword_table(docs: pa.Table, tree: pa.Table, model: KeywordModel, private: Any) -> pa.Table:
    """int_topic_keywords' rows from the fitted texts' ``(text_id, cluster_label, text)`` in
    ``text_id`` order and int_topic_tree's rows. The DuckDB step and the Spark driver both
    call it."""
    classes = [int(c) for c in docs["cluster_label"].to_pylist()]
    texts = redact_all(docs["text"].to_pylist(), private)  # no secret becomes a keyword
    ids, counts, terms = term_counts(texts, classes)
    rows = []
    for level, topic_of in enumerate(cluster_paths(tree.to_pylist())):
        topics = sorted({topic_of.get(c, NOISE) for c in ids} | {NOISE})
        member = np.zeros((len(topics), len(ids)))
        for j, c in enumerate(ids):
            member[topics.index(topic_of.get(c, NOISE)), j] = 1.0
        found = top_terms(
            member @ counts if counts is not None else None,
            terms,
            topics,
            top_k=model.terms_wanted(),
        )
        labels = label_from_keywords(found, n=model.n, default_label=model.default_label)
        rows += [
            {
                "topic_key": topic_key(level, t),
                "level": level,
                "topic_id": t,
                "top_keywords": found[t][: model.top_k],
                "keyword_labels": labels[t],
            }
            for t in topics
        ]
    return pa.Table.from_pylist(rows, schema=TOPIC_KEYWORDS_SCHEMA)


def cluster_paths(nodes: list[dict[str, Any]]) -> list[dict[int, int]]:
    """Per level, cluster -> its topic at that level (level 0: itself), from tree rows."""
    parent: dict[tuple[int, int], int | None] = {
        (r["level"], r["topic_id"]): r["parent_topic_id"] for r in nodes
    }
    clusters = sorted(t for (level, t) in parent if level == 0)
    levels = 1 + max((level for level, _ in parent), default=0)
    out = [{c: c for c in clusters}]
    for level in range(1, levels):
        below = out[-1]
        out.append({c: parent[(level - 1, t)] for c, t in below.items()})  # type: ignore[misc]
    return out
