"""Writes fct_text_clusters and dim_clusters as parquet to var export_dir, and lists them.
Kept as is (files not rewritten) when the marts did not change since the last build."""

from text_clustering import export_marts


def model(dbt, session):
    dbt.config(materialized="table")
    return export_marts(
        session,
        dbt.this,
        dbt.ref("fct_text_clusters"),
        dbt.ref("dim_clusters"),
        dbt.config.get("settings"),
    )
