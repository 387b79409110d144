{#-
    The overrides seed (seeds/cluster_overrides.csv), one row per decision: actions
    lowercased, empty strings as nulls, level 0 when empty. Checked against the build by
    int_cluster_overrides.
-#}
with

overrides as (

    select * from {{ ref('cluster_overrides') }}

),

final as (

    select
        override_id,
        lower(trim(action)) as action,
        coalesce(level, 0) as level,
        cluster_id,
        into_cluster_id,
        nullif(trim(text_id), '') as text_id,
        nullif(trim(label), '') as label,
        note
    from overrides

)

select * from final
