"""The LLM reply cache, one row per distinct request: every layer named bottom-up (cluster
prompts, topic prompts, collision-group relabels). Incremental: only requests without a
final reply are sent, so an unchanged rebuild makes no call."""

from text_clustering import ask_llm


def model(dbt, session):
    dbt.config(
        materialized="incremental", unique_key="request_hash", on_schema_change="append_new_columns"
    )
    return ask_llm(
        session,
        dbt.this if dbt.is_incremental else None,
        dbt.ref("int_cluster_prompts"),
        dbt.ref("int_cluster_keywords"),
        dbt.ref("int_cluster_representatives"),
        dbt.ref("int_topic_tree"),
        dbt.ref("int_topic_keywords"),
        dbt.ref("int_topic_representatives"),
        dbt.config.get("settings"),
    )
