"""text_clustering: cluster a table of texts in DuckDB and label every cluster.

The dbt Python models of this project are thin wrappers over these functions.
"""

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
    project,
    project_incremental,
    project_table,
)
from .vectors import read_arrow, read_previous, to_arrow, to_numpy

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
