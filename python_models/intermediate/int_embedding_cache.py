"""The embedding cache: one FLOAT[] per distinct (embedding_model, text) ever embedded.

Incremental on embedding_key = md5(model, text): only texts not yet in the cache are
embedded, so a rebuild with unchanged input embeds nothing and new texts embed alone.
`full_refresh: false` keeps it through `dbt build --full-refresh` (var
embedding_cache_full_refresh: true empties it). Unused when var embedding_column is set.
"""

from text_clustering import embed_missing, embedding_key_sql, read_arrow, read_int, read_str
from text_clustering.config import read_optional_int
from text_clustering.runtime import use_threads


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="embedding_key")
    model_name = read_str("embedding_model", dbt.config.get("embedding_model"))
    batch_size = read_int("embedding_batch_size", dbt.config.get("embedding_batch_size"), minimum=1)
    precomputed = read_str("embedding_column", dbt.config.get("embedding_column"), required=False)
    n_threads = read_optional_int("n_threads", dbt.config.get("n_threads"), minimum=1)

    texts = dbt.ref("stg_texts").filter("is_embeddable")
    if precomputed:
        texts = texts.limit(0)  # the input brings its own vectors: nothing to embed
    missing = texts.select(f"{embedding_key_sql(model_name)} as embedding_key, text").distinct()
    if dbt.is_incremental:
        cached = session.sql(f"select embedding_key from {dbt.this}")
        missing = missing.join(cached, "embedding_key", how="anti")
    if missing.aggregate("count(*)").fetchall()[0][0]:
        use_threads(n_threads)
    return embed_missing(
        read_arrow(missing.order("embedding_key")), model_name=model_name, batch_size=batch_size
    )
