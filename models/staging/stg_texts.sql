{#-
    One row per input text, from var source_path or source_table (see macros/input.sql).
    text_id: the id column cast to varchar, or a stable id made from the text itself.
-#}
{%- set text_column = text_clustering_column('text_column') -%}
{%- set id_column = text_clustering_column('id_column', required=false) -%}
{%- do text_clustering_check_ids(id_column) -%}
{%- set embedding_column = text_clustering_column('embedding_column', required=false) -%}
{%- set reference_column = text_clustering_column('reference_label_column', required=false) -%}
{%- set source_id = text_clustering_id_as_text(id_column) if id_column else 'null::varchar' -%}
{%- set precomputed = 'cast(' ~ embedding_column ~ ' as float[])' if embedding_column
    else 'null::float[]' -%}
{%- set reference = 'cast(' ~ reference_column ~ ' as varchar)' if reference_column
    else 'null::varchar' -%}

with

source as (

    select * from {{ text_clustering_source() }}

),

renamed as (

    select
        {{ source_id }} as source_id,
        cast({{ text_column }} as varchar) as text,
        {{ precomputed }} as precomputed_embedding,
        {{ reference }} as reference_label
    from source

),

identified as (

    select
        text,
        precomputed_embedding,
        reference_label,
        coalesce(text, '') as hash_key,
        row_number() over (partition by coalesce(text, '')) as occurrence,
        text is not null and regexp_matches(text, '[\pL\pN]') as is_embeddable,
        coalesce(
            source_id,
            substr(md5(hash_key), 1, 16)
            || case when occurrence > 1 then '-' || occurrence else '' end
        ) as text_id
    from renamed

),

final as (

    select
        text_id,
        text,
        is_embeddable,
        precomputed_embedding,
        reference_label
    from identified

)

select * from final
