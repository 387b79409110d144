{#-
    Run by the on-run-start hook (dbt_project.yml), before any model: DuckDB stores the
    floats the build writes without its ALP and ALP-RD compression, which apply to FLOAT
    and DOUBLE columns only. Embeddings do not compress (at 100k texts the table of vectors
    took 150 MB compressed, 148 MB not) but compressing them cost ~0.9 s of writing and
    ~0.3 s of every read of the 100k vectors (docs/performance.md). DuckDB offers this as a
    setting of the whole database only; every other type keeps its compression (texts and
    ids FSST and dictionaries, integers bit-packing).
-#}
{% macro text_clustering_float_storage() %}
    {{ return(adapter.dispatch('text_clustering_float_storage', 'text_clustering')()) }}
{% endmacro %}

{% macro default__text_clustering_float_storage() %}
    {{ return('') }}
{% endmacro %}

{% macro duckdb__text_clustering_float_storage() %}
    {{ return("set disabled_compression_methods = 'alp,alprd'") }}
{% endmacro %}
