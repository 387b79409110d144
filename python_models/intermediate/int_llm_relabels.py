"""The relabel cache: one row per collision-group request ever answered (incremental).

Only requests whose request_hash has no `ok` row yet are sent; a rebuild with unchanged input
makes no call. `full_refresh: false` keeps the cache through `dbt build --full-refresh`
(var llm_cache_full_refresh: true empties it), as int_llm_responses.
"""

from text_clustering import (
    LLMLabeller,
    LLMSettings,
    client_from_env,
    read_arrow,
    read_bool,
    read_float,
    read_int,
    relabels_table,
)


def model(dbt, session):
    dbt.config(materialized="incremental", unique_key="request_hash")
    timeout = read_float("llm_timeout", dbt.config.get("llm_timeout"), minimum=1)
    max_attempts = read_int("llm_max_attempts", dbt.config.get("llm_max_attempts"), minimum=1)
    max_concurrency = read_int("input_batch_size", dbt.config.get("input_batch_size"), minimum=1)
    time_budget = read_float("llm_time_budget", dbt.config.get("llm_time_budget"), minimum=1)
    dry_run = read_bool("llm_dry_run", dbt.config.get("llm_dry_run"))

    prompts = read_arrow(dbt.ref("int_cluster_relabel_prompts"))
    answered = set()
    if dbt.is_incremental:
        cached = session.sql(f"select request_hash from {dbt.this} where status = 'ok'")
        answered = set(read_arrow(cached)["request_hash"].to_pylist())
    client = client_from_env(timeout=timeout)  # OPENAI_API_KEY / OPENAI_BASE_URL
    labeller = None
    if client is not None and prompts.num_rows:
        settings = LLMSettings.from_json(prompts["settings_json"][0].as_py())
        labeller = LLMLabeller(
            client=client, settings=settings, max_attempts=max_attempts, timeout=timeout
        )
    return relabels_table(
        prompts,
        answered,
        labeller,
        max_concurrency=max_concurrency,
        time_budget=time_budget,
        dry_run=dry_run,
    )
