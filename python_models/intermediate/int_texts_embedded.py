"""One embedding (FLOAT[d]) per text that has words; precomputed vectors are passed through."""

from text_clustering import embed_table, read_arrow, read_int, read_str


def model(dbt, session):
    dbt.config(materialized="table")
    precomputed = read_str("embedding_column", dbt.config.get("embedding_column"), required=False)
    texts = dbt.ref("stg_texts").filter("is_embeddable").order("text_id")
    return embed_table(
        read_arrow(texts.select("text_id, text, precomputed_embedding")),
        model_name=read_str("embedding_model", dbt.config.get("embedding_model")),
        batch_size=read_int(
            "embedding_batch_size", dbt.config.get("embedding_batch_size"), minimum=1
        ),
        precomputed_column="precomputed_embedding" if precomputed else None,
    )
