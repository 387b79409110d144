{#-
    One row per (text, level): every input text's topic at every level of the hierarchy,
    level 0 being its cluster. Noise and texts without words are -1 at every level. For BI
    drill-down: join dim_topics on (level, topic_id).
-#}
with

texts as (

    select * from {{ ref('stg_texts') }}

),

clustered as (

    select * from {{ ref('int_texts_clustered') }}

),

cluster_topics as (

    select * from {{ ref('int_cluster_topics') }}

),

assigned as (

    select
        texts.text_id,
        coalesce(clustered.cluster_label, -1) as cluster_label
    from texts
    left join clustered on texts.text_id = clustered.text_id

),

final as (

    select
        assigned.text_id || '@' || cluster_topics.level as text_topic_key,
        assigned.text_id,
        cluster_topics.level,
        cluster_topics.topic_id
    from assigned
    inner join cluster_topics on assigned.cluster_label = cluster_topics.cluster_label

)

select * from final
