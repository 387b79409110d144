-- Representatives: one per facet of the cluster (so never two from the same part of it),
-- each the most central text of its facet, and every facet represented (up to
-- samples_per_cluster). Returns the clusters that break a rule.
with

representatives as (

    select * from {{ ref('int_cluster_representatives') }}

),

clustered as (

    select * from {{ ref('int_cluster_facets') }}

),

two_from_one_facet as (

    select cluster_label
    from representatives
    group by cluster_label, facet
    having count(*) > 1

),

closer_left_out as (

    select representatives.cluster_label
    from representatives
    inner join clustered
        on
            representatives.cluster_label = clustered.cluster_label
            and representatives.facet = clustered.facet
    where clustered.facet_distance < representatives.facet_distance - 1e-6

),

facets as (

    select
        cluster_label,
        count(distinct facet) as n_facets
    from clustered
    group by cluster_label

),

chosen as (

    select
        cluster_label,
        count(*) as n_chosen
    from representatives
    group by cluster_label

),

wrong_count as (

    select facets.cluster_label
    from facets
    left join chosen on facets.cluster_label = chosen.cluster_label
    where
        coalesce(chosen.n_chosen, 0)
        <> least(facets.n_facets, {{ var('samples_per_cluster') }})

),

final as (

    select cluster_label from two_from_one_facet
    union
    select cluster_label from closer_left_out
    union
    select cluster_label from wrong_count

)

select * from final
