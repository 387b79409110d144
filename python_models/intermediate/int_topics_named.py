"""Every topic of levels 1.., noise included, named bottom-up as the LLM step asked it: its
prompt shows its parts' names, keywords and representatives; names distinct per level."""

from text_clustering import name_topics


def model(dbt, session):
    dbt.config(materialized="table")
    return name_topics(
        dbt.ref("int_cluster_prompts"),
        dbt.ref("int_cluster_keywords"),
        dbt.ref("int_cluster_representatives"),
        dbt.ref("int_topic_tree"),
        dbt.ref("int_topic_keywords"),
        dbt.ref("int_topic_representatives"),
        dbt.ref("int_llm_replies"),
        dbt.config.get("settings"),
    )
