{#-
    The input: source('text_clustering', 'texts')
    (models/staging/text_clustering/_text_clustering__sources.yml), once the vars that say
    where it is are checked: exactly one of `source_path` (a parquet/csv/tsv/json/jsonl file)
    or `source_table` (a table in the database). A bad setting stops the build here, with a
    message saying how to fix it. Only the staging models call it.
-#}
{% macro text_clustering_source() %}
    {%- set path = var('source_path', none) -%}
    {%- set table = var('source_table', none) -%}
    {%- if path and table -%}
        {{ exceptions.raise_compiler_error(
            "vars source_path ('" ~ path ~ "') and source_table ('" ~ table ~ "') are both set: "
            ~ "set the one you do not use to null, e.g. --vars '{source_table: " ~ table
            ~ ", source_path: null}'") }}
    {%- elif path -%}
        {%- set lowered = path | lower -%}
        {#- the readers of these suffixes: meta `reader` of the source -#}
        {%- if not (lowered.endswith('.parquet') or lowered.endswith('.csv')
                or lowered.endswith('.csv.gz') or lowered.endswith('.tsv')
                or lowered.endswith('.json') or lowered.endswith('.jsonl')
                or lowered.endswith('.ndjson')) -%}
            {{ exceptions.raise_compiler_error(
                "var source_path '" ~ path ~ "' must end in .parquet, .csv, .csv.gz, .tsv, "
                ~ ".json, .jsonl or .ndjson; for a table in the database use var source_table") }}
        {%- endif -%}
    {%- elif table -%}
        {%- if not modules.re.match('^[A-Za-z_][A-Za-z0-9_]*([.][A-Za-z_][A-Za-z0-9_]*){0,2}$', table) -%}
            {{ exceptions.raise_compiler_error(
                "var source_table '" ~ table ~ "' is not a table name of the form "
                ~ "[database.][schema.]table made of letters, digits and underscores") }}
        {%- endif -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "no input: set var source_path (a parquet/csv/json file) or source_table "
            ~ "(a table in the database), e.g. --vars '{source_path: data/my_texts.parquet}'") }}
    {%- endif -%}
    {{ return(source('text_clustering', 'texts')) }}
{% endmacro %}


{#-
    The input with `source_row`, its rows numbered in input order (DuckDB keeps file order).
    stg_texts and stg_text_vectors both read it, so their rows pair up by source_row.
-#}
{% macro text_clustering_numbered_source() %}
    (select row_number() over () as source_row, * from {{ text_clustering_source() }})
{% endmacro %}


{#-
    A column named by a var, checked against the input's columns (at run time) and quoted.
    An unknown name stops the build with the list of columns that do exist; with `types`,
    so does a column of another type (e.g. numbers or lists named as the text column).
-#}
{% macro text_clustering_column(var_name, required=true, types=none) %}
    {%- set name = var(var_name, none) -%}
    {%- if not name -%}
        {%- if required -%}
            {{ exceptions.raise_compiler_error("var " ~ var_name ~ " must name a column of the input") }}
        {%- endif -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if execute -%}
        {%- set described = run_query("describe select * from " ~ text_clustering_source() ~ " limit 0") -%}
        {%- set columns = described.columns[0].values() -%}
        {%- if name not in columns -%}
            {{ exceptions.raise_compiler_error(
                "var " ~ var_name ~ " = '" ~ name ~ "' is not a column of the input "
                ~ text_clustering_source() ~ "; its columns are: " ~ (columns | join(', '))
                ~ ". Set it with --vars '{" ~ var_name ~ ": <column>}'") }}
        {%- endif -%}
        {%- set type = described.columns[1].values()[columns.index(name)] -%}
        {%- if types and type not in types -%}
            {%- set texts = [] -%}
            {%- for column in columns -%}
                {%- if described.columns[1].values()[loop.index0] in types -%}
                    {%- do texts.append(column) -%}
                {%- endif -%}
            {%- endfor -%}
            {{ exceptions.raise_compiler_error(
                "var " ~ var_name ~ " = '" ~ name ~ "' is a " ~ type ~ " column of the input "
                ~ text_clustering_source() ~ ", not text (" ~ (types | join(' or ')) ~ "). "
                ~ ("Its text columns are: " ~ (texts | join(', ')) if texts else "It has no text column")
                ~ ". Set it with --vars '{" ~ var_name ~ ": <column>}'") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(adapter.quote(name)) }}
{% endmacro %}


{#- An integer var, checked at compile time: a value below `minimum` stops the build. -#}
{% macro text_clustering_int_var(var_name, minimum) %}
    {%- set value = var(var_name, none) -%}
    {%- set parsed = value | int(none) if value is not none else none -%}
    {%- if parsed is none or parsed < minimum or (value | string) != (parsed | string) -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ var_name ~ " must be an integer >= " ~ minimum ~ ", got '" ~ value
            ~ "'. Set it with --vars '{" ~ var_name ~ ": 10}'") }}
    {%- endif -%}
    {{ return(parsed) }}
{% endmacro %}


{#-
    With var id_column set, stop the build (at run time) when ids repeat or are null,
    naming a few of the ids at fault.
-#}
{% macro text_clustering_check_ids(id_column) %}
    {%- if not id_column or not execute -%}{{ return('') }}{%- endif -%}
    {%- set bad = run_query(
        "select bad_id, n_rows from (select " ~ text_clustering_id_as_text(id_column) ~ " as bad_id, "
        ~ "count(*) as n_rows from " ~ text_clustering_source() ~ " group by all) "
        ~ "where n_rows > 1 or bad_id is null "
        ~ "order by bad_id is not null, n_rows desc, bad_id limit 3") -%}
    {%- if bad.rows | length > 0 -%}
        {%- set examples = [] -%}
        {%- for row in bad.rows -%}
            {%- do examples.append((row[0] ~ "" if row[0] is not none else "NULL") ~ " (" ~ row[1] ~ " rows)") -%}
        {%- endfor -%}
        {{ exceptions.raise_compiler_error(
            "var id_column = '" ~ var('id_column') ~ "' must be unique and not null, but "
            ~ "these ids are not: " ~ (examples | join(', '))
            ~ ". Fix the input, or leave id_column unset (null) to use ids made from the texts.") }}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}


{#-
    An id of any type (integer, varchar, JSON with mixed types) as plain VARCHAR:
    1 -> '1', 'a' -> 'a', JSON "a" -> 'a' (no quotes), 2.5 -> '2.5'.
-#}
{% macro text_clustering_id_as_text(id_column) %}
    {{- return("(to_json(" ~ id_column ~ ") ->> '$')") -}}
{% endmacro %}
