{#-
    What became of every cluster at each fit of the clustering, recorded once per fit
    (incremental on the fit): a cluster that continues one of the previous build keeps its
    id (int_texts_clustered matches clusters by their texts), so a text's previous and new
    cluster tell the story. survived: same id; merged_into: the old cluster did not survive
    and these of its texts are in this new one; split_from: the old cluster survived as
    another and these of its texts went here; new: no text of an old cluster; disappeared:
    none of the old cluster's texts still present is in a cluster. The first fit records
    every cluster as new.
-#}
{{ config(
    materialized='incremental',
    unique_key='lineage_key',
    on_schema_change='append_new_columns',
) }}

with

clustered as (

    select * from {{ ref('int_texts_clustered') }}

),

fit as (

    select distinct
        cluster_fit ->> '$.fit_key' as fit_key,
        cluster_fit ->> '$.refit_of' as refit_of
    from clustered

),

pairs as (

    select
        previous_cluster_label as old_cluster,
        cluster_label as new_cluster,
        count(*) as n_texts
    from clustered
    where previous_cluster_label is not null
    group by previous_cluster_label, cluster_label

),

old_sizes as (

    select
        old_cluster,
        sum(n_texts) as n_old
    from pairs
    where old_cluster <> -1
    group by old_cluster

),

new_sizes as (

    select
        new_cluster,
        sum(n_texts) as n_new
    from pairs
    where new_cluster <> -1
    group by new_cluster

),

new_clusters as (

    select distinct cluster_label as new_cluster
    from clustered
    where cluster_label <> -1

),

moved as (

    select
        pairs.old_cluster,
        pairs.new_cluster,
        pairs.n_texts,
        pairs.n_texts / old_sizes.n_old as share_of_old,
        pairs.n_texts / new_sizes.n_new as share_of_new,
        case
            when pairs.old_cluster = pairs.new_cluster then 'survived'
            when pairs.old_cluster in (select nc.new_cluster from new_clusters as nc)
                then 'split_from'
            else 'merged_into'
        end as change
    from pairs
    inner join old_sizes on pairs.old_cluster = old_sizes.old_cluster
    inner join new_sizes on pairs.new_cluster = new_sizes.new_cluster

),

created as (

    select
        null::integer as old_cluster,
        new_clusters.new_cluster,
        0::bigint as n_texts,
        0.0 as share_of_old,
        0.0 as share_of_new,
        'new' as change
    from new_clusters
    where
        new_clusters.new_cluster not in (
            select moved.new_cluster from moved
        )

),

gone as (

    select
        old_sizes.old_cluster,
        null::integer as new_cluster,
        0::bigint as n_texts,
        0.0 as share_of_old,
        0.0 as share_of_new,
        'disappeared' as change
    from old_sizes
    where
        old_sizes.old_cluster not in (
            select moved.old_cluster from moved
        )

),

changes as (

    select * from moved
    union all
    select * from created
    union all
    select * from gone

),

final as (

    select
        fit.fit_key
        || ':' || coalesce(changes.old_cluster::varchar, '')
        || '>' || coalesce(changes.new_cluster::varchar, '') as lineage_key,
        fit.fit_key,
        fit.refit_of,
        changes.old_cluster,
        changes.new_cluster,
        changes.change,
        changes.n_texts,
        changes.share_of_old,
        changes.share_of_new,
        changes.new_cluster is not null
        and changes.new_cluster not in (
            select p.old_cluster from pairs as p
        ) as is_new_id,
        current_timestamp as recorded_at
    from changes
    cross join fit
    {% if is_incremental() %}
        where fit.fit_key not in (select t.fit_key from {{ this }} as t)
    {% endif %}

)

select * from final
