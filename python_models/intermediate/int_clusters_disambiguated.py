"""Every cluster that has labels (keywords offline, an ok LLM reply online), with final
labels no two of which collide: the LLM's relabel when distinct, else distinguishing
keywords appended, else the cluster number appended."""

from text_clustering import distinct_labels_table, read_arrow


def model(dbt, session):
    dbt.config(materialized="table")
    return distinct_labels_table(
        read_arrow(dbt.ref("int_cluster_keywords")),
        read_arrow(dbt.ref("int_cluster_prompts")),
        read_arrow(dbt.ref("int_llm_responses").filter("status = 'ok'")),
        read_arrow(dbt.ref("int_cluster_relabel_prompts")),
        read_arrow(dbt.ref("int_llm_relabels")),
    )
