"""A cluster label (INTEGER, -1 = noise) for every projected text: clusters fitted on the
texts UMAP was fitted on, every other text assigned; noise joins the most similar cluster
within its reach (var noise_policy). Known texts keep their labels while the fit holds."""

from text_clustering import cluster_texts


def model(dbt, session):
    dbt.config(materialized="table")
    return cluster_texts(
        session,
        dbt.this,
        dbt.ref("int_texts_projected"),
        dbt.ref("int_texts_embedded"),
        dbt.config.get("settings"),
    )
