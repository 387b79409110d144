{#-
    The input's own vectors (var embedding_column), by source_row: a view, so the vectors
    are read from the input when int_texts_embedded needs them and never copied. Rows are
    numbered exactly as in stg_texts. Without var embedding_column: no rows.
-#}
{{ config(materialized='view') }}
{%- set embedding_column = text_clustering_column('embedding_column', required=false) %}

with

numbered as (

    -- the rows in input order, numbered as in stg_texts (one macro numbers both)
    select * from {{ text_clustering_numbered_source() }}

),

final as (

    select
        source_row,
        {{ 'cast(' ~ embedding_column ~ ' as float[])' if embedding_column
            else 'null::float[]' }} as precomputed_embedding
    from numbered
    where {{ 'true' if embedding_column else 'false' }}

)

select * from final
