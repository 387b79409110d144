"""Writes a markdown report of the build to var report_path: the headline topics, clusters,
sizes, labels, representative texts, metrics and the figures. Not rewritten when nothing it
shows changed."""

from text_clustering import build_report


def model(dbt, session):
    dbt.config(materialized="table")
    return build_report(
        session,
        dbt.this,
        dbt.ref("dim_clusters"),
        dbt.ref("dim_topics"),
        dbt.ref("int_cluster_representatives"),
        dbt.ref("rpt_text_clusters_figure"),
        dbt.ref("rpt_cluster_metrics"),
        dbt.config.get("settings"),
    )
