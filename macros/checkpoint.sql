{#-
    Run by the on-run-end hook (dbt_project.yml), after every model and test: writes what the
    build changed from DuckDB's write-ahead log (`<database>.wal`) into the database file.
    DuckDB does this itself when the last object holding the database goes, but dbt's process
    can end with one still alive, and then the changes stayed in the `.wal` (seen once in
    `make test` after a successful build; likely a DuckDB object in garbage that the cycle
    collector, frozen at exit by runtime.freeze_collector, never freed). DuckDB replays such
    a log when it next opens the file, but a copy of the `.duckdb` file alone lacks those
    changes, and the log is a second file holding texts. After this checkpoint the log is
    empty however the process ends (tests/python/test_faults.py: a build of 36 texts whose
    process never closes DuckDB left 279 KB of log without this hook, none with it).
-#}
{% macro text_clustering_checkpoint() %}
    {{ return(adapter.dispatch('text_clustering_checkpoint', 'text_clustering')()) }}
{% endmacro %}

{% macro default__text_clustering_checkpoint() %}
    {{ return('') }}
{% endmacro %}

{% macro duckdb__text_clustering_checkpoint() %}
    {{ return('checkpoint') }}
{% endmacro %}
