-- Every input text has exactly one topic at every level of the hierarchy. Returns the
-- (text, level) pairs that are missing or repeated.
with

texts as (

    select * from {{ ref('stg_texts') }}

),

levels as (

    select distinct level from {{ ref('int_topic_tree') }}

),

text_topics as (

    select * from {{ ref('fct_text_topics') }}

),

expected as (

    select
        texts.text_id,
        levels.level
    from texts
    cross join levels

),

counted as (

    select
        expected.text_id,
        expected.level,
        count(text_topics.topic_id) as n_topics
    from expected
    left join text_topics
        on
            expected.text_id = text_topics.text_id
            and expected.level = text_topics.level
    group by expected.text_id, expected.level

),

final as (

    select * from counted
    where n_topics <> 1

)

select * from final
