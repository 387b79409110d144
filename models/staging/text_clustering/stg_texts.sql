{#-
    One row per input text, from the source text_clustering.texts: var source_path or
    source_table (see _text_clustering__sources.yml and macros/input.sql).
    text_id: the id column cast to varchar, or a stable id made from the text itself.
    The input's own vectors (var embedding_column) are not copied here: stg_text_vectors
    reads them by source_row (copying 100k x 384 floats cost seconds in every build).
-#}
{%- set text_column = text_clustering_column('text_column', types=['VARCHAR', 'JSON']) -%}
{%- set id_column = text_clustering_column('id_column', required=false) -%}
{%- do text_clustering_check_ids(id_column) -%}
{%- set reference_column = text_clustering_column('reference_label_column', required=false) -%}
{%- set source_id = text_clustering_id_as_text(id_column) if id_column else 'null::varchar' -%}
{%- set reference = 'cast(' ~ reference_column ~ ' as varchar)' if reference_column
    else 'null::varchar' -%}

with

numbered as (

    -- the rows in input order, numbered as in stg_text_vectors (one macro numbers both)
    select * from {{ text_clustering_numbered_source() }}

),

renamed as (

    select
        source_row,
        {{ source_id }} as source_id,
        cast({{ text_column }} as varchar) as text,
        {{ reference }} as reference_label
    from numbered

),

identified as (

    select
        source_row,
        text,
        reference_label,
        coalesce(text, '') as hash_key,
        row_number() over (partition by coalesce(text, '') order by source_row) as occurrence,
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
        source_row,
        text,
        is_embeddable,
        reference_label
    from identified

)

select * from final
