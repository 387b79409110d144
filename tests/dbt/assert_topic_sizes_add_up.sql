-- A topic's n_texts is the sum of its children's (one level down). Returns the topics whose
-- children add up to something else.
with

topics as (

    select * from {{ ref('dim_topics') }}

),

children as (

    select
        level + 1 as level,
        parent_topic_id as topic_id,
        sum(n_texts) as n_texts
    from topics
    where parent_topic_id is not null
    group by level, parent_topic_id

),

final as (

    select
        topics.topic_key,
        topics.n_texts,
        children.n_texts as children_n_texts
    from topics
    inner join children
        on
            topics.level = children.level
            and topics.topic_id = children.topic_id
    where topics.n_texts <> children.n_texts

)

select * from final
