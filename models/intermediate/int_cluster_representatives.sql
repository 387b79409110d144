{#-
    Up to `samples_per_cluster` representatives per cluster, central AND diverse: the
    clustering step split every cluster into up to samples_per_cluster facets (k-means
    parts of the cluster in the projection, facet 0 nearest the cluster's centre); each
    facet is represented by its most central text, ties broken by text_id. Deterministic,
    noise excluded, only texts the clusters were fitted on (so adding texts does not change
    the prompts). These are the examples the labeller shows the LLM.
-#}
{%- set samples_per_cluster = text_clustering_int_var('samples_per_cluster', minimum=1) %}

with

clustered as (

    select * from {{ ref('int_texts_clustered') }}

),

texts as (

    select * from {{ ref('stg_texts') }}

),

faceted as (

    select
        cluster_label,
        facet,
        text_id,
        facet_distance
    from clustered
    where cluster_label <> -1 and facet is not null

),

facet_centres as (

    select
        cluster_label,
        facet,
        text_id,
        facet_distance
    from faceted
    qualify row_number() over (
        partition by cluster_label, facet
        order by facet_distance, text_id
    ) = 1

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
    qualify representative_rank <= {{ samples_per_cluster }}

),

final as (

    select
        ranked.cluster_label,
        ranked.representative_rank,
        ranked.text_id,
        texts.text,
        ranked.facet,
        ranked.facet_distance
    from ranked
    inner join texts on ranked.text_id = texts.text_id

)

select * from final
