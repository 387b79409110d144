"""Writes fct_text_clusters and dim_clusters as parquet to var export_dir, and lists them.
Kept as is (files not rewritten) when the marts did not change since the last build."""

from text_clustering import read_arrow, read_str
from text_clustering.export import export_parquet
from text_clustering.reuse import fingerprint, reuse_previous, with_fingerprint


def model(dbt, session):
    dbt.config(materialized="table")
    export_dir = read_str("export_dir", dbt.config.get("export_dir"), required=False)
    facts = dbt.ref("fct_text_clusters")
    dims = dbt.ref("dim_clusters")
    inputs = fingerprint(facts, dims, export_dir)
    files = [f"{export_dir}/{name}.parquet" for name in ("fct_text_clusters", "dim_clusters")]
    kept = reuse_previous(session, dbt.this, inputs, files if export_dir else [])
    if kept is not None:
        return kept
    tables = {
        "fct_text_clusters": read_arrow(facts.order("text_id")),
        "dim_clusters": read_arrow(dims.order("cluster_label")),
    }
    return with_fingerprint(export_parquet(tables, export_dir), inputs)
