{#-
    One row per input text: its projection, cluster and cluster label, the label of its
    topic at the headline level and its path of labels from the top level down to its
    cluster. Texts that were not embedded (no words) and noise points carry cluster -1 and
    var default_label. The overrides seed applies here (int_cluster_overrides): a moved
    text is in the cluster it was moved to, a merged cluster's texts in the cluster it was
    merged into, labels are the pinned ones (int_topics_overridden), and an excluded
    cluster has no topic above it (noise's at every level).
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

overrides as (

    select * from {{ ref('int_cluster_overrides') }}

),

cluster_topics as (

    select * from {{ ref('int_cluster_topics') }}

),

tree as (

    select * from {{ ref('int_topic_tree') }}

),

labels as (

    select * from {{ ref('int_topics_overridden') }}

),

moves as (

    select
        text_id,
        into_cluster_id
    from overrides
    where status = 'applied' and action = 'move'

),

-- an excluded cluster's topic is noise's at every level above it
topic_of_cluster as (

    select
        cluster_topics.cluster_label,
        cluster_topics.level,
        case
            when cluster.is_excluded and cluster_topics.level > 0 then -1
            else cluster_topics.topic_id
        end as topic_id
    from cluster_topics
    inner join labels as cluster
        on
            cluster.level = 0
            and cluster_topics.cluster_label = cluster.topic_id

),

paths as (

    select
        topic_of_cluster.cluster_label,
        list(labels.summary_label order by topic_of_cluster.level desc) as topic_path,
        max(case when tree.is_headline then labels.summary_label end) as topic_label
    from topic_of_cluster
    inner join labels
        on
            topic_of_cluster.level = labels.level
            and topic_of_cluster.topic_id = labels.topic_id
    inner join tree
        on
            topic_of_cluster.level = tree.level
            and topic_of_cluster.topic_id = tree.topic_id
    group by topic_of_cluster.cluster_label

),

assigned as (

    select
        texts.text_id,
        texts.text,
        projected.projection,
        coalesce(clustered.cluster_label, -1) as fitted_cluster_label,
        coalesce(moves.into_cluster_id, merged.merged_into, clustered.cluster_label, -1)
            as cluster_label
    from texts
    left join projected on texts.text_id = projected.text_id
    left join clustered on texts.text_id = clustered.text_id
    left join moves on texts.text_id = moves.text_id
    left join labels as merged
        on
            merged.level = 0
            and clustered.cluster_label = merged.topic_id

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
        assigned.fitted_cluster_label,
        labels.is_excluded
    from assigned
    inner join labels
        on
            labels.level = 0
            and assigned.cluster_label = labels.topic_id
    left join paths on assigned.cluster_label = paths.cluster_label

)

select * from final
