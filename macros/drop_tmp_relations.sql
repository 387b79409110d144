{#-
    Run by the on-run-end hook (dbt_project.yml): drops the tables and views named
    `<model>__dbt_tmp<timestamp>` left in the schemas this run built, so that BI users never
    see them. dbt-duckdb writes the increment of an incremental Python model to such a table
    (a regular one: the model runs on a cursor of its own, which could not see a temporary
    table) and then skips dropping it, taking it for a temporary table; an incremental build
    left four. Leftovers of a failed or killed build go at the end of the next one.
-#}
{% macro text_clustering_drop_tmp_relations() %}
    {{ return(adapter.dispatch('text_clustering_drop_tmp_relations', 'text_clustering')()) }}
{% endmacro %}

{% macro default__text_clustering_drop_tmp_relations() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- for database, schema in database_schemas -%}
        {%- set found = run_query(
            "select table_name, table_type from information_schema.tables"
            ~ " where table_catalog = '" ~ database ~ "' and table_schema = '" ~ schema ~ "'") -%}
        {%- for name, table_type in found.rows if '__dbt_tmp' in name -%}
            {%- set relation = api.Relation.create(
                database=database, schema=schema, identifier=name,
                type='view' if table_type == 'VIEW' else 'table') -%}
            {%- do log('dropping ' ~ relation ~ ', left by an incremental model', info=true) -%}
            {%- do adapter.drop_relation(relation) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return('') }}
{% endmacro %}
