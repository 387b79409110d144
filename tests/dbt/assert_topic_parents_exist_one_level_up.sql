-- Every topic below the top level has a parent that exists one level up, and only the top
-- level has none. Returns the topics that break it.
with

topics as (

    select * from {{ ref('dim_topics') }}

),

top_level as (

    select max(level) as level from topics

),

final as (

    select child.topic_key
    from topics as child
    cross join top_level
    left join topics as parent
        on
            child.level + 1 = parent.level
            and child.parent_topic_id = parent.topic_id
    where
        (child.level < top_level.level and parent.topic_key is null)
        or (child.level = top_level.level and child.parent_topic_id is not null)

)

select * from final
