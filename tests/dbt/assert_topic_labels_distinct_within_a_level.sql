-- No two topics of one level share a label (noise and topics without labels aside).
with

topics as (

    select * from {{ ref('dim_topics') }}

),

final as (

    select
        level,
        summary_label,
        count(*) as n_topics
    from topics
    where not is_noise and label_status = 'ok'
    group by level, summary_label
    having count(*) > 1

)

select * from final
