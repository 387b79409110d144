"""A DBSCAN cluster label (INTEGER, -1 = noise) for every projected text."""

from text_clustering import cluster_table, read_arrow, read_float, read_int


def model(dbt, session):
    dbt.config(materialized="table")
    params = {
        "eps": read_float("eps", dbt.config.get("eps"), minimum=0.0, exclusive=True),
        "min_samples": read_int("min_samples", dbt.config.get("min_samples"), minimum=1),
    }
    return cluster_table(read_arrow(dbt.ref("int_texts_projected")), **params)
