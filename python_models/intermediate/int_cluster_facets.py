"""Each cluster's own members (the texts the density clustering put in it) split into up
to var samples_per_cluster facets, so that representatives are central and diverse."""

from text_clustering import cluster_facets


def model(dbt, session):
    dbt.config(materialized="table")
    return cluster_facets(
        session,
        dbt.this,
        dbt.ref("int_texts_clustered"),
        dbt.ref("int_texts_projected"),
        dbt.config.get("settings"),
    )
