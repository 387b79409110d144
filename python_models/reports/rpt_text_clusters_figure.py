"""Draws the clustering to var figure_path (when var savefig) and records what it drew."""

from text_clustering import read_arrow, read_bool, read_str
from text_clustering.report import figure_summary


def model(dbt, session):
    dbt.config(materialized="table")
    savefig = read_bool("savefig", dbt.config.get("savefig"))
    figure_path = read_str("figure_path", dbt.config.get("figure_path"))
    return figure_summary(
        read_arrow(dbt.ref("fct_text_clusters").select("text_id, projection, cluster_label")),
        read_arrow(dbt.ref("dim_clusters").select("cluster_label, summary_label")),
        path=figure_path if savefig else None,
    )
