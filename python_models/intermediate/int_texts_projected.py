"""A 2-D UMAP projection (FLOAT[2]) of every embedded text: UMAP fitted on up to var
max_fit_rows texts, the others placed on that fit; the previous fit is reused while
nothing it depends on changed (var refit: true or --full-refresh refits)."""

from text_clustering import project_texts


def model(dbt, session):
    dbt.config(materialized="table")
    return project_texts(
        session, dbt.this, dbt.ref("int_texts_embedded"), dbt.config.get("settings")
    )
