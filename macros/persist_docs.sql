{#-
    Run by the on-run-end hook (dbt_project.yml): every model of this project that the run
    built gets its yml description, and each of its columns that has one, as a DuckDB
    COMMENT, so any client sees them (`select comment from duckdb_tables()`, `duckdb_views()`,
    `duckdb_columns()`). The comments dbt's `persist_docs` config wrote, but in one
    transaction at the end of the run: `persist_docs` writes them model by model (a few
    statements and a look at the relation's columns each), which cost ~1 s of an unchanged
    100k rebuild here (docs/performance.md). A model that failed is skipped; a table rebuilt
    in a later run gets its comments again at the end of that run.
-#}
{% macro text_clustering_persist_docs() %}
    {{ return(adapter.dispatch('text_clustering_persist_docs', 'text_clustering')()) }}
{% endmacro %}

{% macro default__text_clustering_persist_docs() %}
    {{ return('') }}
{% endmacro %}

{% macro duckdb__text_clustering_persist_docs() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set built = [] -%}
    {%- for result in results
            if result.node.resource_type == 'model' and result.status == 'success'
            and result.node.package_name == 'text_clustering'
            and result.node.config.materialized != 'ephemeral' -%}
        {%- do built.append(result.node) -%}
    {%- endfor -%}
    {%- if not built -%}{{ return('') }}{%- endif -%}
    {#- the columns each built relation has now: one query -#}
    {%- set keys = [] -%}
    {%- for node in built -%}
        {%- set parts = [node.database, node.schema, node.alias] -%}
        {%- do keys.append("('" ~ parts | map('replace', "'", "''") | join("', '") ~ "')") -%}
    {%- endfor -%}
    {%- set found = run_query(
        "select database_name, schema_name, table_name, column_name from duckdb_columns()"
        ~ " where (database_name, schema_name, table_name) in (" ~ keys | join(', ') ~ ")") -%}
    {%- set columns = {} -%}
    {%- for database, schema, name, column in found.rows -%}
        {%- set key = (database ~ '.' ~ schema ~ '.' ~ name) | lower -%}
        {%- do columns.setdefault(key, []).append(column | lower) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for node in built -%}
        {%- set key = (node.database ~ '.' ~ node.schema ~ '.' ~ node.alias) | lower -%}
        {%- if key in columns -%}
            {%- set relation = api.Relation.create(
                database=node.database, schema=node.schema, identifier=node.alias) -%}
            {%- if node.description -%}
                {%- do statements.append(
                    'comment on ' ~ ('view' if node.config.materialized == 'view' else 'table')
                    ~ ' ' ~ relation
                    ~ ' is ' ~ text_clustering_comment_literal(node.description, node.name)) -%}
            {%- endif -%}
            {%- for name, column in node.columns.items()
                    if column.description and name | lower in columns[key] -%}
                {%- do statements.append(
                    'comment on column ' ~ relation ~ '.' ~ adapter.quote(name) ~ ' is '
                    ~ text_clustering_comment_literal(column.description, node.name)) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not statements -%}{{ return('') }}{%- endif -%}
    {#- one transaction: ~0.1 s for the ~300 comments of a build, ~0.4 s one by one -#}
    {{ return('begin transaction;\n' ~ statements | join(';\n') ~ ';\ncommit;') }}
{% endmacro %}

{#- A description as a dollar-quoted string: taken as written, whatever quotes it holds. -#}
{% macro text_clustering_comment_literal(text, model) %}
    {%- set tag = '$text_clustering_comment$' -%}
    {%- if tag in text -%}
        {{ exceptions.raise_compiler_error(
            "the description of model " ~ model ~ " (or of one of its columns) contains "
            ~ tag ~ ", which the comments written to DuckDB cannot hold: reword it") }}
    {%- endif -%}
    {{ return(tag ~ text ~ tag) }}
{% endmacro %}
