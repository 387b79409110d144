{#-
    The `samples_per_cluster` texts closest to their cluster's centre in the 2-D projection,
    ties broken by text_id: deterministic, noise excluded. These are the examples the
    labeller shows the LLM.
-#}
{%- set samples_per_cluster = text_clustering_int_var('samples_per_cluster', minimum=1) %}

with

clustered as (

    select * from {{ ref('int_texts_clustered') }}

),

projected as (

    select * from {{ ref('int_texts_projected') }}

),

texts as (

    select * from {{ ref('stg_texts') }}

),

clustered_points as (

    select
        clustered.text_id,
        clustered.cluster_label,
        projected.projection[1] as x,
        projected.projection[2] as y
    from clustered
    inner join projected on clustered.text_id = projected.text_id
    where clustered.cluster_label <> -1

),

centres as (

    select
        cluster_label,
        avg(x) as centre_x,
        avg(y) as centre_y
    from clustered_points
    group by cluster_label

),

ranked as (

    select
        clustered_points.cluster_label,
        clustered_points.text_id,
        sqrt(
            power(clustered_points.x - centres.centre_x, 2)
            + power(clustered_points.y - centres.centre_y, 2)
        ) as distance_to_centre,
        row_number() over (
            partition by clustered_points.cluster_label
            order by distance_to_centre, clustered_points.text_id
        ) as representative_rank
    from clustered_points
    inner join centres on clustered_points.cluster_label = centres.cluster_label
    qualify representative_rank <= {{ samples_per_cluster }}

),

final as (

    select
        ranked.cluster_label,
        ranked.representative_rank,
        ranked.text_id,
        texts.text,
        ranked.distance_to_centre
    from ranked
    inner join texts on ranked.text_id = texts.text_id

)

select * from final
