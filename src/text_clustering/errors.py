"""The errors text_clustering raises. Each message says what is wrong and how to fix it."""

from __future__ import annotations


class TextClusteringError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(TextClusteringError, ValueError):
    """A dbt var / setting has a value the pipeline cannot use (the message names the var)."""


class InputError(TextClusteringError, ValueError):
    """The input data breaks the contract (the message names the row or column at fault)."""


class EmbeddingError(TextClusteringError, RuntimeError):
    """The embedding model could not be loaded or used."""
