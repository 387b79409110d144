"""Per cluster: the prompt the LLM is (or, offline, would be) sent, and its cache key; a
cluster whose representatives barely moved since the previous build keeps its prompt."""

from text_clustering import cluster_prompts


def model(dbt, session):
    dbt.config(materialized="table")
    return cluster_prompts(
        session,
        dbt.this,
        dbt.ref("int_cluster_representatives"),
        dbt.config.get("settings"),
    )
