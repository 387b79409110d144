"""Draws the clustering to var figure_path (PNG) and var map_path (interactive HTML) when var
savefig is true, and records what it drew. Nothing is redrawn when the texts, clusters and
labels did not change since the last build and the files are still there."""

from text_clustering import read_arrow, read_bool, read_str
from text_clustering.report import figure_summary
from text_clustering.reuse import fingerprint, reuse_previous, with_fingerprint


def model(dbt, session):
    dbt.config(materialized="table")
    savefig = read_bool("savefig", dbt.config.get("savefig"))
    figure_path = read_str("figure_path", dbt.config.get("figure_path"))
    map_path = read_str("map_path", dbt.config.get("map_path"), required=False)
    texts = dbt.ref("fct_text_clusters").select("text_id, text, projection, cluster_label")
    labels = dbt.ref("dim_clusters").select("cluster_label, summary_label")
    inputs = fingerprint(texts, labels, savefig, figure_path, map_path)
    kept = reuse_previous(session, dbt.this, inputs, [figure_path, map_path] if savefig else [])
    if kept is not None:
        return kept
    table = figure_summary(
        read_arrow(texts),
        read_arrow(labels),
        path=figure_path if savefig else None,
        map_path=map_path if savefig else None,
    )
    return with_fingerprint(table, inputs)
