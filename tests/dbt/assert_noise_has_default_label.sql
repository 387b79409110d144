-- Noise and texts without words (cluster -1) carry var default_label, n times.
{%- set default_label = "'" ~ (var('default_label') | replace("'", "''")) ~ "'" %}

with

text_clusters as (

    select * from {{ ref('fct_text_clusters') }}

),

final as (

    select
        text_id,
        summary_labels
    from text_clusters
    where
        cluster_label = -1
        and summary_labels
        <> list_transform(range({{ var('n') }}), lambda i: {{ default_label }})

)

select * from final
