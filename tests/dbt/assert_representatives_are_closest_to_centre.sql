-- A cluster text left out of the representatives may not be closer to the centre than the
-- farthest representative, and a cluster with at least samples_per_cluster texts has exactly
-- samples_per_cluster representatives. Returns the clusters that break either rule.
with

representatives as (

    select * from {{ ref('int_cluster_representatives') }}

),

clusters as (

    select * from {{ ref('dim_clusters') }}
    where not is_noise

),

texts as (

    select * from {{ ref('fct_text_clusters') }}
    where cluster_label <> -1

),

centres as (

    select
        cluster_label,
        avg(projection[1]) as centre_x,
        avg(projection[2]) as centre_y
    from texts
    group by cluster_label

),

distances as (

    select
        texts.text_id,
        texts.cluster_label,
        sqrt(
            power(texts.projection[1] - centres.centre_x, 2)
            + power(texts.projection[2] - centres.centre_y, 2)
        ) as distance_to_centre
    from texts
    inner join centres on texts.cluster_label = centres.cluster_label

),

farthest_chosen as (

    select
        cluster_label,
        max(distance_to_centre) as max_distance,
        count(*) as n_chosen
    from representatives
    group by cluster_label

),

closer_left_out as (

    select distances.cluster_label
    from distances
    inner join farthest_chosen on distances.cluster_label = farthest_chosen.cluster_label
    where
        distances.text_id not in (select chosen.text_id from representatives as chosen)
        and distances.distance_to_centre < farthest_chosen.max_distance - 1e-6

),

wrong_count as (

    select clusters.cluster_label
    from clusters
    left join farthest_chosen on clusters.cluster_label = farthest_chosen.cluster_label
    where
        coalesce(farthest_chosen.n_chosen, 0)
        <> least(clusters.n_texts, {{ var('samples_per_cluster') }})

),

final as (

    select cluster_label from closer_left_out
    union
    select cluster_label from wrong_count

)

select * from final
