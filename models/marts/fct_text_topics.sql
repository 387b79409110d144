{#-
    One row per (text, level): every input text's topic at every level of the hierarchy,
    level 0 being its cluster (fct_text_clusters.cluster_label, overrides applied). Noise
    and texts without words are -1 at every level, and so are the texts of an excluded
    cluster above level 0. For BI drill-down: join dim_topics on (level, topic_id).
-#}
with

text_clusters as (

    select * from {{ ref('fct_text_clusters') }}

),

cluster_topics as (

    select * from {{ ref('int_cluster_topics') }}

),

final as (

    select
        text_clusters.text_id || '@' || cluster_topics.level as text_topic_key,
        text_clusters.text_id,
        cluster_topics.level,
        case
            when text_clusters.is_excluded and cluster_topics.level > 0 then -1
            else cluster_topics.topic_id
        end as topic_id
    from text_clusters
    inner join cluster_topics on text_clusters.cluster_label = cluster_topics.cluster_label

)

select * from final
