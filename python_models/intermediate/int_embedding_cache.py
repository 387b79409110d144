"""The embedding cache: one FLOAT[] per distinct (embedding_model, text) ever embedded.

Incremental on embedding_key = md5(model, text): only texts not yet in the cache are
embedded. `full_refresh: false` keeps it through `dbt build --full-refresh` (var
embedding_cache_full_refresh: true empties it). Unused when var embedding_column is set.
"""

from text_clustering import embedding_cache


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="embedding_key")
    this = dbt.this if dbt.is_incremental else None
    return embedding_cache(session, dbt.ref("stg_texts"), this, dbt.config.get("settings"))
