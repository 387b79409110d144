import pytest

from text_clustering import ConfigError
from text_clustering.config import is_unset, read_bool, read_float, read_int, read_str


def test_read_int_accepts_ints_and_their_strings():
    assert read_int("n", 3) == 3
    assert read_int("n", " 7 ") == 7


@pytest.mark.parametrize("value", ["x", 2.5, "2.5", None, True])
def test_read_int_rejects_non_integers_naming_the_var(value):
    with pytest.raises(ConfigError, match=r"dbt var `n` must be an integer.*--vars"):
        read_int("n", value)


def test_read_int_minimum_is_inclusive():
    assert read_int("n", 1, minimum=1) == 1
    with pytest.raises(ConfigError, match=r"`n` must be an integer >= 1, got -1"):
        read_int("n", -1, minimum=1)


def test_read_float_exclusive_minimum():
    assert read_float("eps", "0.3", minimum=0, exclusive=True) == 0.3
    with pytest.raises(ConfigError, match=r"`eps` must be a number > 0"):
        read_float("eps", 0, minimum=0, exclusive=True)
    with pytest.raises(ConfigError, match="finite"):
        read_float("eps", "nan")


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("false", False), ("Yes", True), (0, False)]
)
def test_read_bool(value, expected):
    assert read_bool("savefig", value) is expected


def test_read_bool_rejects_other_words():
    with pytest.raises(ConfigError, match="`savefig` must be true or false"):
        read_bool("savefig", "maybe")


def test_read_str_and_unset_values():
    assert read_str("metric", " cosine ") == "cosine"
    assert read_str("embedding_column", "None", required=False) is None
    assert is_unset("null") and is_unset("") and not is_unset("x")
    with pytest.raises(ConfigError, match="`metric` must be a non-empty string"):
        read_str("metric", None)


def test_the_package_exports_its_names_and_imports_heavy_modules_only_on_use():
    from dbt_helpers import python_output

    import text_clustering

    assert text_clustering.__all__ == sorted(text_clustering._EXPORTS)  # one list
    for name in text_clustering.__all__:
        assert getattr(text_clustering, name) is not None
    # the dbt plugin (loaded by every dbt run), the config readers and the steps of the
    # models that a rebuild often only re-checks pull in no heavy module until used
    code = (
        "import sys, text_clustering.dbt_plugin; from text_clustering import ConfigError; "
        "import text_clustering.steps, text_clustering.report, text_clustering.metrics; "
        "print(sorted(m for m in ('sklearn', 'torch', 'umap', 'matplotlib', 'scipy.spatial') "
        "if m in sys.modules))"
    )
    assert python_output(code) == "[]"


def test_every_model_uses_the_one_public_api_and_stays_thin():
    # a dbt Python model reads its config and makes one call into text_clustering
    import ast
    from pathlib import Path

    import text_clustering

    models = sorted(Path(__file__).resolve().parents[2].glob("python_models/*/*.py"))
    assert len(models) >= 12
    for path in models:
        tree = ast.parse(path.read_text())
        imported = [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        ]
        assert all(name in text_clustering.__all__ for name in imported), path.name
        body = [n for n in tree.body if not isinstance(n, ast.Expr | ast.ImportFrom)]
        lines = sum(n.end_lineno - n.lineno + 1 for n in body)
        assert lines <= 20, f"{path.name}: {lines} lines of code"


def test_the_library_defaults_are_the_dbt_project_vars():
    # dbt_project.yml holds the defaults; the library's own defaults must be the same
    import inspect
    from pathlib import Path

    import yaml

    from text_clustering import (
        DEFAULT_MODEL,
        DensityClusterer,
        KeywordModel,
        TopicHierarchy,
        UMAPProjector,
    )
    from text_clustering.embed import embed_texts
    from text_clustering.prompts import DEFAULT_CONTEXT, SYSTEM_PROMPT, LLMSettings
    from text_clustering.steps.clustering import ClusterSettings
    from text_clustering.steps.llm import AskSettings
    from text_clustering.steps.projection import ProjectionSettings, project_incremental
    from text_clustering.steps.topics import HierarchySettings

    project = yaml.safe_load((Path(__file__).resolve().parents[2] / "dbt_project.yml").read_text())
    variables = project["vars"]

    def default(function, name):
        return inspect.signature(function).parameters[name].default

    llm = LLMSettings(model=variables["llm_model"])
    expected = {
        "n_neighbors": [ProjectionSettings().n_neighbors, UMAPProjector().n_neighbors],
        "min_dist": [ProjectionSettings().min_dist, UMAPProjector().min_dist],
        "metric": [ProjectionSettings().metric, UMAPProjector().metric],
        "random_state": [ProjectionSettings().random_state, UMAPProjector().random_state],
        "n_epochs": [ProjectionSettings().n_epochs, UMAPProjector().n_epochs],
        "max_fit_rows": [ProjectionSettings().max_fit_rows],
        "refit_new_share": [default(project_incremental, "refit_new_share")],
        "clustering_algorithm": [ClusterSettings().algorithm, DensityClusterer().algorithm],
        "eps": [ClusterSettings().eps, DensityClusterer().eps],
        "min_samples": [ClusterSettings().min_samples, DensityClusterer().min_samples],
        "noise_policy": [ClusterSettings().noise_policy, DensityClusterer().noise_policy],
        "noise_max_distance": [ClusterSettings().noise_max_distance],
        "target_noise_share": [ClusterSettings().target_noise_share],
        "max_top_topics": [HierarchySettings().max_top_topics, TopicHierarchy().max_top_topics],
        "embedding_model": [DEFAULT_MODEL],
        "embedding_batch_size": [default(embed_texts, "batch_size")],
        "default_label": [KeywordModel().default_label],
        "n": [llm.n, KeywordModel().n],
        "query_title": [llm.query_title],
        "max_example_chars": [llm.max_example_chars],
        "max_prompt_chars": [llm.max_prompt_chars],
        "llm_temperature": [llm.temperature],
        "llm_seed": [llm.seed],
        "use_default_structured_output": [llm.use_structured_output],
        "input_batch_size": [AskSettings().max_concurrency],
        "llm_timeout": [AskSettings().timeout],
        "llm_max_attempts": [AskSettings().max_attempts],
        "llm_time_budget": [AskSettings().time_budget],
        "llm_dry_run": [AskSettings().dry_run],
        "llm_retry_failed": [AskSettings().retry_failed],
    }
    for var, values in expected.items():
        assert all(value == variables[var] for value in values), (var, values, variables[var])
    # null in dbt_project.yml means "the library's default"
    assert variables["context"] is None and llm.context == DEFAULT_CONTEXT
    assert variables["system_prompt"] is None and llm.system_prompt == SYSTEM_PROMPT
    assert variables["examples"] is None and llm.examples == ()
    assert variables["headline_level"] is None and HierarchySettings().headline_level is None
