"""Clusters whose first LLM labels collide, one prompt per collision group: every sibling's
representatives (cut to fit var max_prompt_chars) and current label, asking for distinct
labels. Empty offline and when no two LLM labels collide."""

from text_clustering import read_arrow, relabel_prompts_table


def model(dbt, session):
    dbt.config(materialized="table")
    return relabel_prompts_table(
        read_arrow(dbt.ref("int_cluster_prompts")),
        read_arrow(dbt.ref("int_llm_responses").filter("status = 'ok'")),
        read_arrow(
            dbt.ref("int_cluster_representatives").select(
                "cluster_label, representative_rank, text"
            )
        ),
    )
