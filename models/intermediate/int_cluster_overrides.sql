{#-
    Every row of the overrides seed (seeds/cluster_overrides.csv), checked against this build
    and resolved: a merge's target followed along chains (A into B, B into C: A into C), a
    move's target too. A row that cannot mean anything stops the build with an error naming
    it (unknown action, a field its action needs left empty, an id no build ever gave, noise
    named as a cluster, a merge cycle, two rows deciding the same thing). A row that no
    longer matches this build (its cluster, topic level or text is gone, or its cluster was
    merged away by another row) is kept with status `stale` and the reason: a warn-level
    test lists it, the marts skip it. The marts apply the `applied` rows.
-#}
with recursive

overrides as (

    select * from {{ ref('stg_seeds__cluster_overrides') }}

),

texts as (

    select * from {{ ref('stg_texts') }}

),

tree as (

    select * from {{ ref('int_topic_tree') }}

),

-- per level, one above the largest id ever given (ids below it that are absent now: stale)
high_water as (

    select
        level,
        max(next_topic_id) as next_id
    from tree
    group by level

),

merge_rows as (

    select
        override_id,
        cluster_id,
        into_cluster_id
    from overrides
    where action = 'merge'

),

-- a merge followed along the other merge_rows until a cluster that is not merged, or a cycle
chains as (

    select
        override_id,
        into_cluster_id as at_id,
        [cluster_id] as path
    from merge_rows
    union all
    select
        chains.override_id,
        merge_rows.into_cluster_id as at_id,
        list_append(chains.path, chains.at_id) as path
    from chains
    inner join merge_rows on chains.at_id = merge_rows.cluster_id
    where not list_contains(chains.path, chains.at_id)

),

resolved as (

    select
        override_id,
        arg_max(at_id, len(path)) as final_id,
        bool_or(list_contains(path, at_id)) as is_cycle,
        arg_max(list_append(path, at_id), len(path)) as chain
    from chains
    group by override_id

),

-- each row with what it points at now and the rows that decide the same thing
joined as (

    select
        overrides.*,
        coalesce(resolved.final_id, target_merge.final_id, overrides.into_cluster_id)
            as resolved_into,
        coalesce(resolved.is_cycle, false) as is_cycle,
        resolved.chain,
        subject.topic_id is not null as subject_exists,
        target.topic_id is not null as target_exists,
        texts.text_id is not null as text_exists,
        high_water.next_id,
        coalesce(cluster_water.next_id, 0) as next_cluster_id,
        case
            when overrides.level = 0 then 'cluster ' || overrides.cluster_id
            else 'level-' || overrides.level || ' topic ' || overrides.cluster_id
        end as subject_name,
        merged_away.override_id as merged_away_by,
        merged_away.into_cluster_id as merged_away_into,
        (
            select list(other.override_id order by other.override_id)
            from overrides as other
            where
                other.override_id <> overrides.override_id
                and other.action = overrides.action
                and (
                    (other.action = 'move' and other.text_id = overrides.text_id)
                    or (
                        other.action <> 'move'
                        and other.level = overrides.level
                        and other.cluster_id = overrides.cluster_id
                    )
                )
        ) as same_decision
    from overrides
    left join resolved on overrides.override_id = resolved.override_id
    left join merge_rows as target_merge_row
        on
            overrides.action = 'move'
            and overrides.into_cluster_id = target_merge_row.cluster_id
    left join resolved as target_merge
        on target_merge_row.override_id = target_merge.override_id
    left join tree as subject
        on
            overrides.level = subject.level
            and overrides.cluster_id = subject.topic_id
    left join tree as target
        on
            target.level = 0
            and coalesce(resolved.final_id, target_merge.final_id, overrides.into_cluster_id)
            = target.topic_id
    left join texts on overrides.text_id = texts.text_id
    left join high_water on overrides.level = high_water.level
    left join high_water as cluster_water on cluster_water.level = 0
    left join merge_rows as merged_away
        on
            overrides.action in ('rename', 'exclude')
            and overrides.level = 0
            and overrides.cluster_id = merged_away.cluster_id

),

checked as (

    select
        *,
        'seeds/cluster_overrides.csv, override_id ' || override_id || ' (' || coalesce(action, '')
        || '): ' as row_name,
        case
            when override_id is null
                then 'a row has no override_id: number every row (1, 2, ...)'
            when action is null or action not in ('rename', 'merge', 'move', 'exclude')
                then
                    'action ''' || coalesce(action, '') || ''' is not one of rename, merge, '
                    || 'move, exclude'
            when level < 0 then 'level ' || level || ' is negative: 0 = a cluster, 1.. = a topic'
            when level > 0 and action <> 'rename'
                then
                    action || ' applies to clusters only (level 0 or empty); level ' || level
                    || ' topics can only be renamed'
            when action in ('rename', 'merge', 'exclude') and cluster_id is null
                then
                    'cluster_id is empty: name the cluster (fct_text_clusters.cluster_label) '
                    || 'or topic (dim_topics.topic_id)'
            when action = 'rename' and label is null then 'label is empty: write the label to pin'
            when action in ('merge', 'move') and into_cluster_id is null
                then 'into_cluster_id is empty: name the cluster the texts go to'
            when action = 'move' and text_id is null then 'text_id is empty: name the text to move'
            when action in ('rename', 'merge', 'exclude') and cluster_id = -1
                then 'cluster_id -1 is noise, not a cluster (its label is var default_label)'
            when action = 'merge' and into_cluster_id = -1
                then 'into_cluster_id -1 is noise: to leave texts unclustered, move them'
            when action <> 'move' and cluster_id >= next_id
                then
                    'no build ever had ' || subject_name || ' (ids so far are below ' || next_id
                    || '): see fct_text_clusters.cluster_label or dim_topics.topic_id'
            when action in ('merge', 'move') and into_cluster_id >= next_cluster_id
                then
                    'no build ever had cluster ' || into_cluster_id || ' (into_cluster_id; ids '
                    || 'so far are below ' || next_cluster_id || ')'
            when is_cycle
                then
                    'the merges form a cycle (' || array_to_string(chain, ' into ')
                    || '): delete one of those rows'
            when same_decision is not null
                then
                    'this row and override_id ' || array_to_string(same_decision, ', ') || ' '
                    || action || ' the same '
                    || case when action = 'move' then 'text' else 'cluster or topic' end
                    || ': keep one of them'
        end as error_message,
        case
            when action = 'move' and not text_exists
                then 'text ' || text_id || ' is not in the input (stg_texts)'
            when action <> 'move' and not subject_exists
                then
                    subject_name || ' is not in this build (a refit ended it: '
                    || 'fct_cluster_lineage tells what became of it)'
            when action in ('merge', 'move') and resolved_into <> -1 and not target_exists
                then 'cluster ' || resolved_into || ' (into_cluster_id) is not in this build'
            when merged_away_by is not null
                then
                    'cluster ' || cluster_id || ' is merged into ' || merged_away_into
                    || ' by override_id ' || merged_away_by || ': ' || action || ' that one instead'
        end as stale_reason
    from joined

),

final as (

    select
        override_id,
        action,
        level,
        cluster_id,
        resolved_into as into_cluster_id,
        text_id,
        label,
        note,
        case
            when error_message is not null then error(row_name || error_message)
            when stale_reason is not null then 'stale'
            else 'applied'
        end as status,
        stale_reason
    from checked

)

select * from final
