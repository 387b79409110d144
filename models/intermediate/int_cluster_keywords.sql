{#-
    Per cluster, noise (-1) included: its top c-TF-IDF keywords and var n keyword labels,
    level 0 of int_topic_keywords (the terms are counted once for every level).
-#}
with

topic_keywords as (

    select * from {{ ref('int_topic_keywords') }}

),

final as (

    select
        topic_id as cluster_label,
        top_keywords,
        keyword_labels
    from topic_keywords
    where level = 0

)

select * from final
