"""Layers of topics above the clusters: one row per (level, topic) with its parent one level
up, and the headline level. Fitted on the texts the clusters were fitted on; kept while
those are unchanged, so texts assigned later inherit their cluster's path."""

from text_clustering import topic_tree


def model(dbt, session):
    dbt.config(materialized="table")
    return topic_tree(
        session,
        dbt.this,
        dbt.ref("int_texts_clustered"),
        dbt.ref("int_texts_projected"),
        dbt.ref("int_texts_embedded"),
        dbt.config.get("settings"),
    )
