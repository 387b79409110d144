"""``fct_text_clusters`` and ``dim_clusters`` as parquet (:func:`write_marts`), by Spark SQL
that reads like their dbt SQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .arrow import temp_view
from .labels import Labels

FCT_TEXT_CLUSTERS_SQL = """
with

level_labels as (

    select
        0 as level,
        cluster_label as topic_id,
        summary_label
    from labels
    union all
    select
        level,
        topic_id,
        array_join(summary_labels, '; ') as summary_label
    from topics

),

paths as (

    select
        cluster_topics.cluster_label,
        transform(
            sort_array(
                collect_list(struct(cluster_topics.level, level_labels.summary_label)), false
            ),
            x -> x.summary_label
        ) as topic_path,
        max(case when tree.is_headline then level_labels.summary_label end) as topic_label
    from cluster_topics
    inner join level_labels
        on
            cluster_topics.level = level_labels.level
            and cluster_topics.topic_id = level_labels.topic_id
    inner join tree
        on
            cluster_topics.level = tree.level
            and cluster_topics.topic_id = tree.topic_id
    group by cluster_topics.cluster_label

),

assigned as (

    select
        texts.text_id,
        texts.text,
        placed.projection,
        coalesce(placed.cluster_label, -1) as cluster_label
    from texts
    left join placed on texts.text_id = placed.text_id

),

final as (

    select
        assigned.text_id,
        assigned.text,
        assigned.projection,
        assigned.cluster_label,
        labels.summary_label,
        labels.summary_labels,
        labels.model_name,
        paths.topic_label,
        paths.topic_path,
        -- the overrides seed is the dbt path's: nothing is moved, merged or excluded here
        assigned.cluster_label as fitted_cluster_label,
        false as is_excluded
    from assigned
    inner join labels on assigned.cluster_label = labels.cluster_label
    left join paths on assigned.cluster_label = paths.cluster_label

)

select * from final
"""

DIM_CLUSTERS_SQL = """
with

sizes as (

    select
        cluster_label,
        count(*) as n_texts,
        count(*) / sum(count(*)) over () as share,
        array(
            cast(avg(projection[0]) as float), cast(avg(projection[1]) as float)
        ) as centre
    from text_clusters
    group by cluster_label

),

final as (

    select
        labels.cluster_label,
        labels.cluster_label = -1 as is_noise,
        coalesce(sizes.n_texts, 0) as n_texts,
        coalesce(sizes.share, 0.0) as share,
        sizes.centre,
        labels.summary_label,
        labels.summary_labels,
        labels.model_name,
        labels.label_status,
        labels.label_error,
        labels.distinct_by,
        labels.top_keywords,
        labels.representative_ids,
        cast(null as int) as merged_into,
        false as is_excluded
    from labels
    left join sizes on labels.cluster_label = sizes.cluster_label

)

select * from final
"""


def write_marts(
    spark: Any, texts: Any, placed: Any, labels: Labels, output: Path
) -> dict[str, str]:
    """``fct_text_clusters`` and ``dim_clusters`` as parquet folders under ``output``, by the
    Spark twins of their dbt SQL; returns their paths. The overrides seed
    (seeds/cluster_overrides.csv) is not read here: the override columns say nothing was
    moved, merged or excluded."""
    temp_view(spark, "labels", labels.labelled)
    temp_view(spark, "cluster_topics", labels.cluster_topics)
    temp_view(spark, "tree", labels.tree)
    topics = labels.topics.select(["level", "topic_id", "summary_labels"])
    temp_view(spark, "topics", topics, "level int, topic_id int, summary_labels array<string>")
    texts.select("text_id", "text").createOrReplaceTempView("texts")
    placed.createOrReplaceTempView("placed")
    paths = {name: str(output / name) for name in ("fct_text_clusters", "dim_clusters")}
    spark.sparkContext.setJobDescription("fct_text_clusters")
    spark.sql(FCT_TEXT_CLUSTERS_SQL).write.mode("overwrite").parquet(paths["fct_text_clusters"])
    spark.read.parquet(paths["fct_text_clusters"]).createOrReplaceTempView("text_clusters")
    spark.sparkContext.setJobDescription("dim_clusters")
    spark.sql(DIM_CLUSTERS_SQL).coalesce(1).write.mode("overwrite").parquet(paths["dim_clusters"])
    spark.sparkContext.setJobDescription(None)
    return paths
