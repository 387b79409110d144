"""One embedding (FLOAT[d]) per text that has words: from the embedding cache, or the
input's own vectors (var embedding_column)."""

from text_clustering import embedding_key_sql, embedding_table, read_arrow, read_str


def model(dbt, session):
    dbt.config(materialized="table")
    model_name = read_str("embedding_model", dbt.config.get("embedding_model"))
    precomputed = read_str("embedding_column", dbt.config.get("embedding_column"), required=False)

    texts = dbt.ref("stg_texts").filter("is_embeddable")
    if precomputed:
        vectors = texts.select("text_id, precomputed_embedding as embedding")
    else:
        keyed = texts.select(f"text_id, {embedding_key_sql(model_name)} as embedding_key")
        vectors = keyed.join(dbt.ref("int_embedding_cache"), "embedding_key").select(
            "text_id, embedding"
        )
    return embedding_table(read_arrow(vectors.order("text_id")), "embedding")
