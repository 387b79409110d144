{#-
    One row per (level, topic), level 0 being the clusters: the labels the marts show once
    the overrides seed is applied (int_cluster_overrides, its `applied` rows). A renamed
    cluster or topic shows the pinned label, model_name `human`; a cluster merged into
    another says which; an excluded cluster is marked. Without overrides, the labels of
    int_clusters_labelled and int_topics_named as they are.
-#}
with

clusters as (

    select * from {{ ref('int_clusters_labelled') }}

),

topics as (

    select * from {{ ref('int_topics_named') }}

),

overrides as (

    select * from {{ ref('int_cluster_overrides') }}

),

applied as (

    select * from overrides
    where status = 'applied'

),

labelled as (

    select
        0 as level,
        cluster_label as topic_id,
        summary_label,
        summary_labels,
        model_name
    from clusters
    union all
    select
        level,
        topic_id,
        array_to_string(summary_labels, '; ') as summary_label,
        summary_labels,
        model_name
    from topics

),

final as (

    select
        labelled.level || ':' || labelled.topic_id as topic_key,
        labelled.level,
        labelled.topic_id,
        coalesce(renamed.label, labelled.summary_label) as summary_label,
        case
            when renamed.label is null then labelled.summary_labels else [renamed.label]
        end as summary_labels,
        case when renamed.label is null then labelled.model_name else 'human' end as model_name,
        renamed.override_id as renamed_by,
        merged.into_cluster_id as merged_into,
        merged.override_id as merged_by,
        excluded.override_id is not null as is_excluded
    from labelled
    left join applied as renamed
        on
            renamed.action = 'rename'
            and labelled.level = renamed.level
            and labelled.topic_id = renamed.cluster_id
    left join applied as merged
        on
            merged.action = 'merge'
            and labelled.level = 0
            and labelled.topic_id = merged.cluster_id
    left join applied as excluded
        on
            excluded.action = 'exclude'
            and labelled.level = 0
            and labelled.topic_id = excluded.cluster_id

)

select * from final
