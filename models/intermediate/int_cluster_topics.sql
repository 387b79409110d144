{#-
    Every cluster's topic at every level of the hierarchy (int_topic_tree), level 0 being
    the cluster itself; noise (-1) is noise at every level. Texts take their cluster's
    topics, so texts assigned to a cluster after the fit inherit its path.
-#}
with recursive

tree as (

    select * from {{ ref('int_topic_tree') }}

),

paths as (

    select
        topic_id as cluster_label,
        level,
        topic_id,
        parent_topic_id
    from tree
    where level = 0

    union all

    select
        paths.cluster_label,
        tree.level,
        tree.topic_id,
        tree.parent_topic_id
    from paths
    inner join tree
        on
            paths.level + 1 = tree.level
            and paths.parent_topic_id = tree.topic_id

),

final as (

    select
        cluster_label || '@' || level as path_key,
        cluster_label,
        level,
        topic_id
    from paths

)

select * from final
