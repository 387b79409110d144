{#-
    Up to `samples_per_cluster` representatives per cluster, central AND diverse:
    int_cluster_facets split every cluster's own members into up to samples_per_cluster
    facets (k-means parts of the cluster in the projection, facet 0 nearest its centre); each
    facet is represented by its most central text, ties broken by text_id. Deterministic,
    noise excluded, only texts the clusters were fitted on (so adding texts does not change
    the prompts). These are the examples the labeller shows the LLM.
-#}
{%- set samples_per_cluster = text_clustering_int_var('samples_per_cluster', minimum=1) %}

with

facets as (

    select * from {{ ref('int_cluster_facets') }}

),

texts as (

    select * from {{ ref('stg_texts') }}

),

facet_centres as (

    select
        cluster_label,
        facet,
        text_id,
        facet_distance
    from facets
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
