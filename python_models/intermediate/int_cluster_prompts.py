"""Per cluster: the prompt the LLM is (or, offline, would be) sent, and its cache key."""

from text_clustering import LLMSettings, client_from_env, prompts_table, read_arrow


def model(dbt, session):
    dbt.config(materialized="table")
    settings = LLMSettings.from_vars(
        {
            "llm_model": dbt.config.get("llm_model"),
            "n": dbt.config.get("n"),
            "query_title": dbt.config.get("query_title"),
            "context": dbt.config.get("context"),
            "system_prompt": dbt.config.get("system_prompt"),
            "examples": dbt.config.get("examples"),
            "max_example_chars": dbt.config.get("max_example_chars"),
            "max_prompt_chars": dbt.config.get("max_prompt_chars"),
            "llm_temperature": dbt.config.get("llm_temperature"),
            "llm_seed": dbt.config.get("llm_seed"),
            "use_default_structured_output": dbt.config.get("use_default_structured_output"),
        }
    )
    return prompts_table(
        read_arrow(dbt.ref("int_cluster_representatives")),
        settings,
        llm_enabled=client_from_env() is not None,  # OPENAI_API_KEY / OPENAI_BASE_URL
    )
