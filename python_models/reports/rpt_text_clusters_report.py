"""Writes a markdown report of the build to var report_path: clusters, sizes, labels,
representative texts, metrics and the figures. Not rewritten when nothing it shows changed."""

from text_clustering import read_arrow, read_str
from text_clustering.report import write_report
from text_clustering.reuse import fingerprint, reuse_previous, with_fingerprint


def model(dbt, session):
    dbt.config(materialized="table")
    report_path = read_str("report_path", dbt.config.get("report_path"), required=False)
    clusters = dbt.ref("dim_clusters")
    representatives = dbt.ref("int_cluster_representatives").select(
        "cluster_label, representative_rank, text"
    )
    figure = dbt.ref("rpt_text_clusters_figure")
    metrics = dbt.ref("rpt_cluster_metrics")
    inputs = fingerprint(clusters, representatives, figure, metrics, report_path)
    kept = reuse_previous(session, dbt.this, inputs, [report_path])
    if kept is not None:
        return kept
    table = write_report(
        read_arrow(clusters),
        read_arrow(representatives),
        read_arrow(figure),
        path=report_path,
        metrics=read_arrow(metrics),
    )
    return with_fingerprint(table, inputs)
