{#- Generic tests for the pipeline's contract. Each returns the failing rows. -#}

{#- Every value is a non-null string with at least one non-space character. -#}
{% test not_blank(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} is null or trim({{ column_name }}) = ''
{% endtest %}


{#- The model has exactly as many rows as `compare_model` (no text lost or duplicated). -#}
{% test equal_row_count(model, compare_model) %}
with
actual as (select count(*) as n_rows from {{ model }}),
expected as (select count(*) as n_rows from {{ compare_model }})
select
    actual.n_rows as actual_rows,
    expected.n_rows as expected_rows
from actual, expected
where actual.n_rows <> expected.n_rows
{% endtest %}


{#-
    Every cluster id in `column_name` except `noise` has a row in `labels_model` with a
    non-blank `label_column`.
-#}
{% test every_cluster_labelled(model, column_name, labels_model, label_column='summary_label', noise=-1) %}
with
clusters as (
    select distinct {{ column_name }} as cluster_label
    from {{ model }}
    where {{ column_name }} <> {{ noise }}
),
labels as (
    select cluster_label, {{ label_column }} as label
    from {{ labels_model }}
)
select clusters.cluster_label
from clusters
left join labels on clusters.cluster_label = labels.cluster_label
where labels.label is null or trim(labels.label) = ''
{% endtest %}


{#- Every value is a list/array of exactly `length` finite numbers. -#}
{% test vector_length(model, column_name, length) %}
select *
from {{ model }}
where {{ column_name }} is not null
    and (
        len({{ column_name }}) <> {{ length }}
        or list_count(list_filter({{ column_name }}::double[], lambda x: isfinite(x))) <> {{ length }}
    )
{% endtest %}


{#- Every non-null value lies in [min_value, max_value]. -#}
{% test between(model, column_name, min_value, max_value) %}
select *
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}


{#- Every non-null value is a list of exactly `length` elements. -#}
{% test list_length(model, column_name, length) %}
select *
from {{ model }}
where {{ column_name }} is not null and len({{ column_name }}) <> {{ length }}
{% endtest %}
