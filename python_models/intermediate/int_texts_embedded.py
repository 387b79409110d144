"""One embedding (FLOAT[d]) per text that has words: from the embedding cache, or the
input's own vectors (var embedding_column). Incremental on text_id: only new or changed
texts are written, texts no longer in the input deleted."""

from text_clustering import embedded_texts


def model(dbt, session):
    dbt.config(
        materialized="incremental", unique_key="text_id", incremental_strategy="delete+insert"
    )
    return embedded_texts(
        session,
        dbt.this if dbt.is_incremental else None,
        dbt.ref("stg_texts"),
        dbt.ref("int_embedding_cache"),
        dbt.ref("stg_text_vectors"),
        dbt.config.get("settings"),
    )
