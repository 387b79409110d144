"""Per cluster (noise included): its top c-TF-IDF keywords and n offline keyword labels,
from the texts the clusters were fitted on; kept while those did not change."""

from text_clustering import cluster_keywords


def model(dbt, session):
    dbt.config(materialized="table")
    return cluster_keywords(
        session,
        dbt.this,
        dbt.ref("int_texts_clustered"),
        dbt.ref("int_texts_projected"),
        dbt.ref("stg_texts"),
        dbt.config.get("settings"),
    )
