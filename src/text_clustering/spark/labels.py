"""The labels on the driver, from the fitted texts only (:func:`label_fit`): the dbt
models' step functions, and the Spark twins of the representatives' SQL."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..clustering import ALGORITHMS, NOISE
from ..config import read_int, read_str
from ..vectors import read_arrow
from .arrow import has_parquet, temp_view
from .placement import SavedFit, vectors_reader

REPRESENTATIVES_SQL = """
with

facet_centres as (

    select
        cluster_label,
        facet,
        text_id,
        facet_distance,
        row_number() over (
            partition by cluster_label, facet
            order by facet_distance, text_id
        ) as facet_rank
    from facets

),

ranked as (

    select
        cluster_label,
        text_id,
        facet,
        facet_distance,
        row_number() over (
            partition by cluster_label order by facet
        ) as representative_rank
    from facet_centres
    where facet_rank = 1

),

final as (

    select
        ranked.cluster_label,
        ranked.representative_rank,
        ranked.text_id,
        fit_texts.text,
        ranked.facet,
        ranked.facet_distance
    from ranked
    inner join fit_texts on ranked.text_id = fit_texts.text_id
    where ranked.representative_rank <= {samples}

)

select * from final
"""

TOPIC_REPRESENTATIVES_SQL = """
with

cluster_sizes as (

    select
        topic_id as cluster_label,
        n_fit_texts
    from tree
    where level = 0

),

ranked as (

    select
        cluster_topics.level,
        cluster_topics.topic_id,
        representatives.cluster_label,
        representatives.text_id,
        representatives.text,
        row_number() over (
            partition by cluster_topics.level, cluster_topics.topic_id
            order by
                representatives.representative_rank asc,
                cluster_sizes.n_fit_texts desc,
                representatives.cluster_label asc
        ) as topic_rank
    from representatives
    inner join cluster_topics
        on representatives.cluster_label = cluster_topics.cluster_label
    inner join cluster_sizes
        on representatives.cluster_label = cluster_sizes.cluster_label
    where cluster_topics.level >= 1 and cluster_topics.topic_id <> -1

),

final as (

    select
        concat(level, ':', topic_id, ':', topic_rank) as representative_key,
        level,
        topic_id,
        topic_rank as representative_rank,
        text_id,
        text,
        cluster_label
    from ranked
    where topic_rank <= {samples}

)

select * from final
"""


@dataclass
class Labels:
    """The small tables the marts join: every cluster's labels (``int_clusters_labelled``'s
    columns the marts read), each cluster's topic per level, the tree and the topics' names,
    and the LLM replies added to the cache in this run."""

    labelled: pa.Table
    cluster_topics: pa.Table
    tree: pa.Table
    topics: pa.Table
    new_replies: pa.Table
    tables: dict[str, pa.Table] = field(default_factory=dict)


def label_fit(
    spark: Any, fit: SavedFit, fit_texts: pa.Table, settings: Mapping[str, Any], cache: Path
) -> Labels:
    """Facets, representatives, topic tree, keywords, prompts, LLM replies (cached in the
    parquet folder ``cache``) and names of the fitted texts' clusters and topics, by the
    dbt models' step functions."""
    import duckdb
    import pyarrow.parquet as pq

    from ..keywords import KeywordModel
    from ..redact import check_classes
    from ..steps.labelling import cluster_prompts, facet_table
    from ..steps.llm import ask_llm
    from ..steps.naming import name_clusters, name_topics
    from ..steps.topics import HierarchySettings, build_tree, cluster_paths, keyword_table
    from ..vectors import to_numpy

    k = read_int("samples_per_cluster", settings.get("samples_per_cluster"), minimum=1)
    rows = fit.rows
    labels = rows["cluster_label"].to_numpy(zero_copy_only=False)
    own = pc.is_in(rows["assigned_by"], value_set=pa.array(list(ALGORITHMS))).to_numpy(
        zero_copy_only=False
    )
    members = rows.filter(pa.array((labels != NOISE) & own))
    facets = facet_table(members.select(["text_id", "cluster_label", "projection"]), k)
    # representatives: the SQL of int_cluster_representatives, windows in Spark
    texts = fit_texts.select(["text_id", "text"])
    temp_view(spark, "facets", facets)
    temp_view(spark, "fit_texts", texts)
    representatives = spark.sql(REPRESENTATIVES_SQL.format(samples=k)).toArrow()
    tree = build_tree(
        rows.select(["text_id", "cluster_label"]),
        vectors_reader(fit.ids(), to_numpy(rows, "embedding")),
        HierarchySettings.from_config(settings),
    )
    paths = cluster_paths(tree.to_pylist())
    cluster_topics = pa.Table.from_pylist(
        [
            {"cluster_label": c, "level": level, "topic_id": t}
            for level, topic_of in enumerate(paths)
            for c, t in sorted(topic_of.items())
        ],
        schema=pa.schema(
            [("cluster_label", pa.int32()), ("level", pa.int32()), ("topic_id", pa.int32())]
        ),
    )
    default_label = read_str("default_label", settings.get("default_label"))
    assert default_label is not None
    model = KeywordModel(n=read_int("n", settings.get("n"), minimum=1), default_label=default_label)
    docs = rows.select(["text_id", "cluster_label"]).join(texts, "text_id").sort_by("text_id")
    topic_keywords = keyword_table(docs, tree, model, check_classes(settings.get("redact")))
    keywords = topic_keywords.filter(pc.equal(topic_keywords["level"], 0))
    keywords = keywords.select(["topic_id", "top_keywords", "keyword_labels"]).rename_columns(
        ["cluster_label", "top_keywords", "keyword_labels"]
    )
    temp_view(spark, "representatives", representatives)
    temp_view(spark, "cluster_topics", cluster_topics)
    temp_view(spark, "tree", tree)
    topic_representatives = spark.sql(TOPIC_REPRESENTATIVES_SQL.format(samples=k)).toArrow()

    con = duckdb.connect()
    rel = con.from_arrow
    prompts = cluster_prompts(con, None, rel(representatives), settings)
    cached = f"read_parquet('{cache}/*.parquet')" if has_parquet(cache) else None
    # what the LLM step and the topics' naming both read, in their argument order
    inputs = (
        rel(prompts),
        rel(keywords),
        rel(representatives),
        rel(tree),
        rel(topic_keywords),
        rel(topic_representatives),
    )
    new = ask_llm(con, cached, *inputs, settings)
    if new.num_rows:
        cache.mkdir(parents=True, exist_ok=True)
        pq.write_table(new, cache / f"replies-{time.time_ns()}.parquet")
    # every reply: the cache as it now is (the rows just added included), one per request
    every = _latest_replies(
        con.sql(f"select * from read_parquet('{cache}/*.parquet')") if has_parquet(cache) else new
    )
    named = name_clusters(rel(keywords), rel(prompts), rel(every), rel(representatives), settings)
    topics = name_topics(*inputs, rel(every), settings)
    for name, table in (("named", named), ("keywords", keywords), ("prompts", prompts)):
        con.register(name, table)
    labelled = read_arrow(
        con.sql(
            """
        select
            named.cluster_label,
            named.summary_labels,
            array_to_string(named.summary_labels, '; ') as summary_label,
            named.model_name,
            named.label_status,
            named.label_error,
            named.distinct_by,
            keywords.top_keywords,
            coalesce(prompts.representative_ids, []) as representative_ids
        from named
        inner join keywords on named.cluster_label = keywords.cluster_label
        left join prompts on named.cluster_label = prompts.cluster_label
        """
        )
    )
    tables = {"prompts": prompts, "representatives": representatives, "facets": facets}
    return Labels(labelled, cluster_topics, tree, topics, new, tables)


def _latest_replies(table: Any) -> pa.Table:
    """One reply per request_hash, the latest answered (the dbt model's merge on the key)."""
    table = read_arrow(table)
    if not table.num_rows:
        return table
    order = table.sort_by([("request_hash", "ascending"), ("answered_at", "descending")])
    first = np.ones(order.num_rows, dtype=bool)
    hashes = order["request_hash"].to_numpy(zero_copy_only=False)
    first[1:] = hashes[1:] != hashes[:-1]
    return order.filter(pa.array(first))
