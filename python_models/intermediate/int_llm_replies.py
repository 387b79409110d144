"""The LLM reply cache, one row per distinct request (cluster prompts and collision-group
relabels). Incremental: only requests without a final reply are sent, so an unchanged
rebuild makes no call. `full_refresh: false` keeps it through --full-refresh."""

from text_clustering import ask_llm


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="request_hash")
    return ask_llm(
        session,
        dbt.this if dbt.is_incremental else None,
        dbt.ref("int_cluster_prompts"),
        dbt.ref("int_cluster_representatives"),
        dbt.config.get("settings"),
    )
