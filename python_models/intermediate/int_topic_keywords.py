"""Per topic of levels 1.. (noise included): its top c-TF-IDF keywords against the other
topics of its level, and var n keyword labels (the offline names of the topics)."""

from text_clustering import topic_keywords


def model(dbt, session):
    dbt.config(materialized="table")
    return topic_keywords(
        session,
        dbt.this,
        dbt.ref("int_texts_clustered"),
        dbt.ref("int_texts_projected"),
        dbt.ref("stg_texts"),
        dbt.ref("int_topic_tree"),
        dbt.config.get("settings"),
    )
