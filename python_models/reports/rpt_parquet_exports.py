"""Writes fct_text_clusters and dim_clusters as parquet to var export_dir, and lists them."""

from text_clustering import read_arrow, read_str
from text_clustering.export import export_parquet


def model(dbt, session):
    dbt.config(materialized="table")
    export_dir = read_str("export_dir", dbt.config.get("export_dir"), required=False)
    tables = {
        "fct_text_clusters": read_arrow(dbt.ref("fct_text_clusters").order("text_id")),
        "dim_clusters": read_arrow(dbt.ref("dim_clusters").order("cluster_label")),
    }
    return export_parquet(tables, export_dir)
