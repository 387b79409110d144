"""How well each cluster's and topic's label retrieves its own texts: the label embedded with
the texts' model, ROC AUC of its texts against the others by cosine similarity, per row and
per level (see metrics.label_retrieval_auc). Kept as is when its inputs did not change."""

from text_clustering import label_quality


def model(dbt, session):
    dbt.config(materialized="table")
    return label_quality(
        session,
        dbt.this,
        dbt.ref("dim_topics"),
        dbt.ref("fct_text_clusters"),
        dbt.ref("int_texts_embedded"),
        dbt.config.get("settings"),
    )
