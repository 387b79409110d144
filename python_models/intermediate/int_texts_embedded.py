"""One embedding (FLOAT[d]) per text that has words: from the embedding cache, or the
input's own vectors (var embedding_column).

Incremental on text_id: a build writes only texts that are new or whose vector changed, and
deletes texts no longer in the input, so an unchanged rebuild copies no vector.
"""

from text_clustering import embedded_increment, embedding_key_sql, read_str


def model(dbt, session):
    dbt.config(
        materialized="incremental", unique_key="text_id", incremental_strategy="delete+insert"
    )
    model_name = read_str("embedding_model", dbt.config.get("embedding_model"))
    precomputed = read_str("embedding_column", dbt.config.get("embedding_column"), required=False)

    texts = dbt.ref("stg_texts").filter("is_embeddable")
    if precomputed:
        own = dbt.ref("stg_text_vectors").select("source_row, precomputed_embedding as embedding")
        vectors = texts.join(own, "source_row").select("text_id, embedding")
    else:
        keyed = texts.select(f"text_id, {embedding_key_sql(model_name)} as embedding_key")
        vectors = keyed.join(dbt.ref("int_embedding_cache"), "embedding_key").select(
            "text_id, embedding"
        )
    return embedded_increment(session, vectors, dbt.this if dbt.is_incremental else None)
