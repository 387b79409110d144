"""Draws the clustering to var figure_path (PNG) and var map_path (interactive HTML) when var
savefig is true, and records what it drew; nothing is redrawn when the texts, clusters and
labels did not change and the files are still there."""

from text_clustering import cluster_figures


def model(dbt, session):
    dbt.config(materialized="table")
    return cluster_figures(
        session, dbt.this, dbt.ref("fct_text_clusters"), dbt.config.get("settings")
    )
