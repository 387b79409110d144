"""Writes a markdown report of the build to var report_path: clusters, sizes, labels,
representative texts, metrics and the figures."""

from text_clustering import read_arrow, read_str
from text_clustering.report import write_report


def model(dbt, session):
    dbt.config(materialized="table")
    report_path = read_str("report_path", dbt.config.get("report_path"), required=False)
    representatives = dbt.ref("int_cluster_representatives")
    return write_report(
        read_arrow(dbt.ref("dim_clusters")),
        read_arrow(representatives.select("cluster_label, representative_rank, text")),
        read_arrow(dbt.ref("rpt_text_clusters_figure")),
        path=report_path,
        metrics=read_arrow(dbt.ref("rpt_cluster_metrics")),
    )
