"""The step layer: one function per pipeline step, called by its dbt Python model.

A step owns what the algorithms (:mod:`text_clustering.projection`,
:mod:`~text_clustering.clustering`, :mod:`~text_clustering.keywords`,
:mod:`~text_clustering.labeller`, ...) know nothing about: the Arrow schema of its table,
reading its inputs from DuckDB (streamed where they are large), what a rebuild reuses of its
previous rows (:mod:`~text_clustering.steps.reuse`), and the dbt config it reads. Every
function takes the DuckDB connection and relations a model has, and returns the model's
table (or relation).
"""

from __future__ import annotations

from ..runtime import avoid_hugepage_stalls, freeze_collector
from .clustering import CLUSTERED_SCHEMA, ClusterSettings, cluster_incremental, cluster_texts
from .embedding import embedded_texts, embedding_cache
from .labelling import cluster_facets, cluster_prompts
from .llm import ask_llm
from .naming import name_clusters, name_topics
from .projection import PROJECTED_SCHEMA, ProjectionSettings, project_incremental, project_texts
from .reports import build_report, cluster_figures, cluster_metrics, export_marts, label_quality
from .topics import topic_keywords, topic_tree

avoid_hugepage_stalls()  # once per process, before the steps allocate their large arrays
freeze_collector()  # what dbt loaded before the first model is not rescanned by every collection

__all__ = [
    "CLUSTERED_SCHEMA",
    "PROJECTED_SCHEMA",
    "ClusterSettings",
    "ProjectionSettings",
    "ask_llm",
    "build_report",
    "cluster_facets",
    "cluster_figures",
    "cluster_incremental",
    "cluster_metrics",
    "cluster_prompts",
    "cluster_texts",
    "embedded_texts",
    "embedding_cache",
    "export_marts",
    "label_quality",
    "name_clusters",
    "name_topics",
    "project_incremental",
    "project_texts",
    "topic_keywords",
    "topic_tree",
]
