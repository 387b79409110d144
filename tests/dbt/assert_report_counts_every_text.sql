-- The build report accounts for every input text.
with

report as (

    select * from {{ ref('rpt_text_clusters_report') }}

),

texts as (

    select count(*) as n_texts from {{ ref('stg_texts') }}

),

final as (

    select
        report.n_texts as reported,
        texts.n_texts as expected
    from report
    cross join texts
    where report.n_texts <> texts.n_texts

)

select * from final
