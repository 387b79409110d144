"""One row per cluster with its labels: from the LLM when one is configured, else c-TF-IDF."""

from text_clustering import (
    LLMLabeller,
    client_from_env,
    label_clusters,
    read_arrow,
    read_int,
    read_str,
)


def model(dbt, session):
    dbt.config(materialized="table")
    n = read_int("n", dbt.config.get("n"), minimum=1)
    client = client_from_env()  # OPENAI_API_KEY / OPENAI_BASE_URL: environment only
    labeller = None
    if client is not None:
        labeller = LLMLabeller(
            client=client,
            model=read_str("llm_model", dbt.config.get("llm_model")),
            n=n,
            query_title=read_str("query_title", dbt.config.get("query_title")),
        )
    documents = dbt.ref("int_texts_clustered").join(dbt.ref("stg_texts"), "text_id")
    return label_clusters(
        read_arrow(documents.order("text_id").select("cluster_label, text")),
        read_arrow(dbt.ref("int_cluster_representatives")),
        n=n,
        default_label=read_str("default_label", dbt.config.get("default_label")),
        labeller=labeller,
        max_concurrency=read_int("input_batch_size", dbt.config.get("input_batch_size"), minimum=1),
    )
