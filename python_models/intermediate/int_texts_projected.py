"""A 2-D UMAP projection (FLOAT[2]) of every embedded text."""

from text_clustering import project_table, read_arrow, read_float, read_int, read_str


def model(dbt, session):
    dbt.config(materialized="table")
    params = {
        "n_neighbors": read_int("n_neighbors", dbt.config.get("n_neighbors"), minimum=2),
        "min_dist": read_float("min_dist", dbt.config.get("min_dist"), minimum=0.0),
        "metric": read_str("metric", dbt.config.get("metric")),
        "random_state": read_int("random_state", dbt.config.get("random_state")),
    }
    return project_table(read_arrow(dbt.ref("int_texts_embedded")), **params)
