{#-
    Up to `samples_per_cluster` representatives per topic of levels 1.., drawn across its
    parts: the most central representative of every cluster it holds first (its largest
    clusters first), then the second of each, and so on. Deterministic; noise excluded.
    These are the examples a topic's prompt shows.
-#}
{%- set samples_per_cluster = text_clustering_int_var('samples_per_cluster', minimum=1) %}

with

representatives as (

    select * from {{ ref('int_cluster_representatives') }}

),

cluster_topics as (

    select * from {{ ref('int_cluster_topics') }}

),

tree as (

    select * from {{ ref('int_topic_tree') }}

),

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
    qualify topic_rank <= {{ samples_per_cluster }}

),

final as (

    select
        level || ':' || topic_id || ':' || topic_rank as representative_key,
        level,
        topic_id,
        topic_rank as representative_rank,
        text_id,
        text,
        cluster_label
    from ranked

)

select * from final
