{#-
    One row per input text: its projection, cluster and cluster label, the label of its
    topic at the headline level and its path of labels from the top level down to its
    cluster. Texts that were not embedded (no words) and noise points carry cluster -1 and
    var default_label.
-#}
with

texts as (

    select * from {{ ref('stg_texts') }}

),

projected as (

    select * from {{ ref('int_texts_projected') }}

),

clustered as (

    select * from {{ ref('int_texts_clustered') }}

),

labels as (

    select * from {{ ref('int_clusters_labelled') }}

),

cluster_topics as (

    select * from {{ ref('int_cluster_topics') }}

),

tree as (

    select * from {{ ref('int_topic_tree') }}

),

topics as (

    select * from {{ ref('int_topics_named') }}

),

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
        array_to_string(summary_labels, '; ') as summary_label
    from topics

),

paths as (

    select
        cluster_topics.cluster_label,
        list(level_labels.summary_label order by cluster_topics.level desc) as topic_path,
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
        projected.projection,
        coalesce(clustered.cluster_label, -1) as cluster_label
    from texts
    left join projected on texts.text_id = projected.text_id
    left join clustered on texts.text_id = clustered.text_id

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
        paths.topic_path
    from assigned
    inner join labels on assigned.cluster_label = labels.cluster_label
    left join paths on assigned.cluster_label = paths.cluster_label

)

select * from final
