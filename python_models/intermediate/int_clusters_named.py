"""Every cluster, noise included, with its labels and their source (keywords offline, the
LLM's reply online, the default label otherwise), decided once; colliding labels made
distinct (LLM relabel, distinguishing keywords, or the cluster number)."""

from text_clustering import name_clusters


def model(dbt, session):
    dbt.config(materialized="table")
    return name_clusters(
        dbt.ref("int_cluster_keywords"),
        dbt.ref("int_cluster_prompts"),
        dbt.ref("int_llm_replies"),
        dbt.ref("int_cluster_representatives"),
        dbt.config.get("settings"),
    )
