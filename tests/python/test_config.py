import pytest

from text_clustering import ConfigError, read_bool, read_float, read_int, read_str
from text_clustering.config import is_unset


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
    import subprocess
    import sys

    import text_clustering

    assert set(text_clustering.__all__) == set(text_clustering._EXPORTS)
    import text_clustering.cluster
    import text_clustering.project

    # the functions, not the submodules of the same name
    assert text_clustering.cluster.__name__ == "cluster"
    assert text_clustering.project.__name__ == "project"
    for name in text_clustering.__all__:
        assert getattr(text_clustering, name) is not None
    # the dbt plugin (loaded by every dbt run), the config readers and the modules of the
    # models that a rebuild often only re-checks pull in no heavy module until used
    code = (
        "import sys, text_clustering.dbt_plugin; from text_clustering import read_int; "
        "import text_clustering.report, text_clustering.metrics, text_clustering.label; "
        "print(sorted(m for m in ('sklearn', 'torch', 'umap', 'matplotlib', 'scipy.spatial') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
