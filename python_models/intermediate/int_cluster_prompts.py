"""Per cluster: the prompt the LLM is (or, offline, would be) sent, and its cache key."""

from text_clustering import cluster_prompts


def model(dbt, session):
    dbt.config(materialized="table")
    return cluster_prompts(dbt.ref("int_cluster_representatives"), dbt.config.get("settings"))
