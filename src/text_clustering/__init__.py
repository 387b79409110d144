"""text_clustering: cluster a table of texts in DuckDB and label every cluster.

The dbt Python models of this project are thin wrappers over these functions. Names are
imported on first use (PEP 562): ``import text_clustering`` is cheap, so a model or the dbt
plugin pays only for the submodules it needs (scikit-learn, torch and umap take seconds).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "CLUSTERED_SCHEMA": "cluster",
    "ClusterSettings": "cluster",
    "ConfigError": "errors",
    "DEFAULT_MODEL": "embed",
    "EmbeddingError": "errors",
    "InputError": "errors",
    "KEYWORD_MODEL_NAME": "keywords",
    "LLMLabeller": "llm",
    "LLMSettings": "llm",
    "NOISE": "cluster",
    "PROJECTED_SCHEMA": "project",
    "ProjectionSettings": "project",
    "TextClusteringError": "errors",
    "class_tfidf": "keywords",
    "client_from_env": "llm",
    "cluster": "cluster",
    "cluster_incremental": "cluster",
    "cluster_table": "cluster",
    "collision_groups": "keywords",
    "disambiguate": "keywords",
    "distinct_labels_table": "label",
    "embed_missing": "embed",
    "embed_texts": "embed",
    "embedded_increment": "embed",
    "embedding_key_sql": "embed",
    "embedding_table": "embed",
    "embeddings_reader": "project",
    "keyword_labels": "keywords",
    "keywords_table": "label",
    "labels_collide": "keywords",
    "make_distinct": "label",
    "project": "project",
    "project_incremental": "project",
    "project_table": "project",
    "prompts_table": "label",
    "read_arrow": "vectors",
    "read_bool": "config",
    "read_float": "config",
    "read_int": "config",
    "read_optional_float": "config",
    "read_previous": "vectors",
    "read_str": "config",
    "relabel_prompts_table": "label",
    "relabels_table": "label",
    "responses_table": "label",
    "save_cluster_figure": "figure",
    "to_arrow": "vectors",
    "to_numpy": "vectors",
}

# Functions named like their submodule are bound now: importing ``text_clustering.cluster``
# later would otherwise leave the package attribute ``cluster`` pointing at the module.
from .cluster import cluster  # noqa: E402
from .project import project  # noqa: E402

__all__ = [
    "CLUSTERED_SCHEMA",
    "DEFAULT_MODEL",
    "KEYWORD_MODEL_NAME",
    "NOISE",
    "PROJECTED_SCHEMA",
    "ClusterSettings",
    "ConfigError",
    "EmbeddingError",
    "InputError",
    "LLMLabeller",
    "LLMSettings",
    "ProjectionSettings",
    "TextClusteringError",
    "class_tfidf",
    "client_from_env",
    "cluster",
    "cluster_incremental",
    "cluster_table",
    "collision_groups",
    "disambiguate",
    "distinct_labels_table",
    "embed_missing",
    "embed_texts",
    "embedded_increment",
    "embedding_key_sql",
    "embedding_table",
    "embeddings_reader",
    "keyword_labels",
    "keywords_table",
    "labels_collide",
    "make_distinct",
    "project",
    "project_incremental",
    "project_table",
    "prompts_table",
    "read_arrow",
    "read_bool",
    "read_float",
    "read_int",
    "read_optional_float",
    "read_previous",
    "read_str",
    "relabel_prompts_table",
    "relabels_table",
    "responses_table",
    "save_cluster_figure",
    "to_arrow",
    "to_numpy",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'text_clustering' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # static type checkers and IDEs see the eager imports
    from .cluster import (
        CLUSTERED_SCHEMA,
        NOISE,
        ClusterSettings,
        cluster,
        cluster_incremental,
        cluster_table,
    )
    from .config import read_bool, read_float, read_int, read_optional_float, read_str
    from .embed import (
        DEFAULT_MODEL,
        embed_missing,
        embed_texts,
        embedded_increment,
        embedding_key_sql,
        embedding_table,
    )
    from .errors import (
        ConfigError,
        EmbeddingError,
        InputError,
        TextClusteringError,
    )
    from .figure import save_cluster_figure
    from .keywords import (
        KEYWORD_MODEL_NAME,
        class_tfidf,
        collision_groups,
        disambiguate,
        keyword_labels,
        labels_collide,
    )
    from .label import (
        distinct_labels_table,
        keywords_table,
        make_distinct,
        prompts_table,
        relabel_prompts_table,
        relabels_table,
        responses_table,
    )
    from .llm import LLMLabeller, LLMSettings, client_from_env
    from .project import (
        PROJECTED_SCHEMA,
        ProjectionSettings,
        embeddings_reader,
        project,
        project_incremental,
        project_table,
    )
    from .vectors import read_arrow, read_previous, to_arrow, to_numpy
