{#-
    not_null for several columns of a model in one test (one dbt node instead of one per
    column: ~50 ms of dbt's own work each, paid by every build). Fails with one row per
    column that holds nulls: the column and how many rows.
-#}
{% test not_null_columns(model, columns) %}
{% for column in columns %}
    select
        '{{ column }}' as null_column,
        count(*) as n_rows
    from {{ model }}
    where {{ adapter.quote(column) }} is null
    having count(*) > 0
    {% if not loop.last %}union all{% endif %}
{% endfor %}
{% endtest %}
