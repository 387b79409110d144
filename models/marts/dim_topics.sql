{#-
    One row per (level, topic) of the hierarchy, level 0 being the clusters and -1 noise at
    every level: its parent one level up, size and share of all texts, labels and who wrote
    them, top keywords and the representatives its prompt shows. is_headline_level marks
    the level the figure and the report lead with. Labels as the overrides seed pins them
    (int_topics_overridden); an excluded cluster's parent is -1 (it has no topic).
-#}
with

tree as (

    select * from {{ ref('int_topic_tree') }}

),

text_topics as (

    select * from {{ ref('fct_text_topics') }}

),

clusters as (

    select * from {{ ref('int_clusters_labelled') }}

),

topics as (

    select * from {{ ref('int_topics_named') }}

),

overridden as (

    select * from {{ ref('int_topics_overridden') }}

),

topic_keywords as (

    select * from {{ ref('int_topic_keywords') }}

),

topic_representatives as (

    select * from {{ ref('int_topic_representatives') }}

),

sizes as (

    select
        level,
        topic_id,
        count(*) as n_texts,
        count(*) / sum(count(*)) over (partition by level) as share
    from text_topics
    group by level, topic_id

),

topic_representative_ids as (

    select
        level,
        topic_id,
        list(text_id order by representative_rank) as representative_ids
    from topic_representatives
    group by level, topic_id

),

cluster_names as (

    select
        0 as level,
        cluster_label as topic_id,
        label_status,
        top_keywords,
        representative_ids
    from clusters

),

topic_names as (

    select
        topics.level,
        topics.topic_id,
        topics.label_status,
        topic_keywords.top_keywords,
        -- the representatives the prompt shows (it may drop the last ones to fit)
        coalesce(
            topic_representative_ids.representative_ids[1:topics.n_examples], []
        ) as representative_ids
    from topics
    left join topic_keywords
        on
            topics.level = topic_keywords.level
            and topics.topic_id = topic_keywords.topic_id
    left join topic_representative_ids
        on
            topics.level = topic_representative_ids.level
            and topics.topic_id = topic_representative_ids.topic_id

),

names as (

    select * from cluster_names
    union all
    select * from topic_names

),

final as (

    select
        tree.topic_key,
        tree.level,
        tree.topic_id,
        case
            when overridden.is_excluded then -1 else tree.parent_topic_id
        end as parent_topic_id,
        tree.topic_id = -1 as is_noise,
        tree.is_headline as is_headline_level,
        coalesce(sizes.n_texts, 0) as n_texts,
        coalesce(sizes.share, 0.0) as share,
        overridden.summary_label,
        overridden.summary_labels,
        overridden.model_name,
        names.label_status,
        coalesce(names.top_keywords, []) as top_keywords,
        coalesce(names.representative_ids, []) as representative_ids
    from tree
    inner join names
        on
            tree.level = names.level
            and tree.topic_id = names.topic_id
    inner join overridden
        on
            tree.level = overridden.level
            and tree.topic_id = overridden.topic_id
    left join sizes
        on
            tree.level = sizes.level
            and tree.topic_id = sizes.topic_id

)

select * from final
