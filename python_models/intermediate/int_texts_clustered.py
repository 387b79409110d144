"""A cluster label (INTEGER, -1 = noise) for every projected text.

Clusters are fitted (DBSCAN with eps chosen from the data unless var eps is set, or HDBSCAN)
on the texts UMAP was fitted on; every other text is assigned to its nearest fitted
neighbour's cluster. Noise then joins the cluster whose centroid in the embedding space is
most similar when it lies within that cluster's reach (var noise_policy: centroid; keep
leaves it noise). With an unchanged projection fit and settings, known texts keep their
labels and only new texts are assigned.
"""

from text_clustering import (
    CLUSTERED_SCHEMA,
    ClusterSettings,
    cluster_incremental,
    embeddings_reader,
    read_arrow,
    read_float,
    read_int,
    read_optional_float,
    read_previous,
    read_str,
)


def model(dbt, session):
    dbt.config(materialized="table")
    settings = ClusterSettings(
        algorithm=read_str("clustering_algorithm", dbt.config.get("clustering_algorithm")),
        eps=read_optional_float("eps", dbt.config.get("eps"), minimum=0.0, exclusive=True),
        min_samples=read_int("min_samples", dbt.config.get("min_samples"), minimum=2),
        noise_policy=read_str("noise_policy", dbt.config.get("noise_policy")),
        noise_max_distance=read_optional_float(
            "noise_max_distance", dbt.config.get("noise_max_distance"), minimum=0.0
        ),
        target_noise_share=read_float(
            "target_noise_share", dbt.config.get("target_noise_share"), minimum=0.0
        ),
        samples_per_cluster=read_int(
            "samples_per_cluster", dbt.config.get("samples_per_cluster"), minimum=1
        ),
        random_state=read_int("random_state", dbt.config.get("random_state")),
    )
    projected = dbt.ref("int_texts_projected").select(
        "text_id, embedding_hash, projection, projection_source, fit_id"
    )
    return cluster_incremental(
        read_arrow(projected),
        read_previous(session, dbt.this, CLUSTERED_SCHEMA),
        settings,
        embeddings=embeddings_reader(session, dbt.ref("int_texts_embedded")),
    )
