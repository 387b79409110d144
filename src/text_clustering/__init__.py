"""text_clustering: cluster a table of texts in DuckDB and label every cluster.

The algorithms are small scikit-learn-style estimators over NumPy arrays
(:class:`UMAPProjector`, :class:`DensityClusterer`, :class:`KeywordModel`, and
:class:`LLMLabeller` with an injected client); the step functions (:mod:`.steps`) move tables
in and out of DuckDB for the dbt Python models, each of which makes one call.

Names are imported on first use (PEP 562): ``import text_clustering`` is cheap, so a model
or the dbt plugin pays only for the submodules it needs. ``_EXPORTS`` is the one list of
public names; ``__all__`` is made from it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # errors
    "ConfigError": "errors",
    "EmbeddingError": "errors",
    "InputError": "errors",
    "EngineError": "errors",
    "InvalidReplyError": "errors",
    "TextClusteringError": "errors",
    # estimators and what they are made of
    "DensityClusterer": "clustering",
    "TopicHierarchy": "hierarchy",
    "KeywordModel": "keywords",
    "LLMLabeller": "labeller",
    "LLMSettings": "prompts",
    "NOISE": "clustering",
    "UMAPProjector": "projection",
    "DEFAULT_MODEL": "embed",
    "KEYWORD_MODEL_NAME": "keywords",
    "client_from_env": "transport",
    "embed_texts": "embed",
    "labels_collide": "collisions",
    "make_distinct": "naming",
    "save_cluster_figure": "figure",
    "to_arrow": "vectors",
    "to_numpy": "vectors",
    # the steps, one per dbt Python model
    "ClusterSettings": "steps",
    "ProjectionSettings": "steps",
    "ask_llm": "steps",
    "build_report": "steps",
    "cluster_facets": "steps",
    "cluster_figures": "steps",
    "cluster_metrics": "steps",
    "cluster_prompts": "steps",
    "cluster_texts": "steps",
    "embedded_texts": "steps",
    "embedding_cache": "steps",
    "export_marts": "steps",
    "label_quality": "steps",
    "name_clusters": "steps",
    "name_topics": "steps",
    "topic_keywords": "steps",
    "topic_tree": "steps",
    "project_texts": "steps",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'text_clustering' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
