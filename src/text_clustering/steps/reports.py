"""The report steps: metrics, the figure and map, the markdown report and the parquet
exports. Each keeps its previous row when its inputs did not change and the files it wrote
are still there (:func:`~text_clustering.steps.reuse.reuse_or_build`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from ..config import read_bool, read_int, read_str
from ..vectors import read_arrow
from .reuse import reuse_or_build


def cluster_metrics(
    connection: Any, this: Any, text_clusters: Any, texts: Any, config: Mapping
) -> pa.Table:
    """rpt_cluster_metrics: one row of numbers about the clustering (vars
    reference_label_column, random_state)."""
    from ..metrics import metrics_table

    reference = read_str(
        "reference_label_column", config.get("reference_label_column"), required=False
    )
    random_state = read_int("random_state", config.get("random_state"))
    projected = text_clusters.join(texts, "text_id").filter("projection is not null")
    projected = projected.select("text_id, projection, cluster_label, reference_label")
    return reuse_or_build(
        connection,
        this,
        [projected, reference, random_state],
        lambda: metrics_table(
            read_arrow(projected),
            reference_column="reference_label" if reference else None,
            random_state=random_state,
        ),
    )


def cluster_figures(connection: Any, this: Any, text_clusters: Any, config: Mapping) -> pa.Table:
    """rpt_text_clusters_figure: the PNG (var figure_path) and the HTML map (var map_path)
    of fct_text_clusters (which carries each cluster's label) when var savefig is true."""
    from ..report import figure_summary

    savefig = read_bool("savefig", config.get("savefig"))
    figure_path = read_str("figure_path", config.get("figure_path"))
    map_path = read_str("map_path", config.get("map_path"), required=False)
    texts = text_clusters.select("text_id, text, projection, cluster_label")
    labels = text_clusters.select("cluster_label, summary_label").distinct()
    return reuse_or_build(
        connection,
        this,
        [texts, labels, savefig, figure_path, map_path],
        lambda: figure_summary(
            read_arrow(texts),
            read_arrow(labels.order("cluster_label")),
            path=figure_path if savefig else None,
            map_path=map_path if savefig else None,
        ),
        files=[figure_path, map_path] if savefig else [],
    )


def build_report(
    connection: Any,
    this: Any,
    clusters: Any,
    topics: Any,
    representatives: Any,
    figure: Any,
    metrics: Any,
    config: Mapping,
) -> pa.Table:
    """rpt_text_clusters_report: the markdown report at var report_path, leading with the
    topics of the headline level (``topics``: dim_topics)."""
    from ..report import write_report

    report_path = read_str("report_path", config.get("report_path"), required=False)
    representatives = representatives.select("cluster_label, representative_rank, text")
    return reuse_or_build(
        connection,
        this,
        [clusters, topics, representatives, figure, metrics, report_path],
        lambda: write_report(
            read_arrow(clusters),
            read_arrow(representatives),
            read_arrow(figure),
            path=report_path,
            metrics=read_arrow(metrics),
            topics=read_arrow(topics),
        ),
        files=[report_path],
    )


def export_marts(
    connection: Any, this: Any, text_clusters: Any, clusters: Any, config: Mapping
) -> pa.Table:
    """rpt_parquet_exports: the marts as parquet files in var export_dir (none when null)."""
    from ..export import export_parquet

    export_dir = read_str("export_dir", config.get("export_dir"), required=False)
    names = ("fct_text_clusters", "dim_clusters")
    files = [f"{export_dir}/{name}.parquet" for name in names] if export_dir else []

    def build() -> pa.Table:
        tables = {
            "fct_text_clusters": read_arrow(text_clusters.order("text_id")),
            "dim_clusters": read_arrow(clusters.order("cluster_label")),
        }
        return export_parquet(tables, export_dir)

    return reuse_or_build(
        connection, this, [text_clusters, clusters, export_dir], build, files=files
    )
