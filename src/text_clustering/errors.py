"""The errors text_clustering raises. Each message says what is wrong and how to fix it.

None of them subclasses ``ValueError``: the LLM retry policy treats only
:class:`InvalidReplyError` as "the endpoint answered, but not in the shape asked for", so a
setting or input error raised inside a call is never mistaken for a bad reply.
"""

from __future__ import annotations


class TextClusteringError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(TextClusteringError):
    """A dbt var / setting has a value the pipeline cannot use (the message names the var)."""


class InputError(TextClusteringError):
    """The input data breaks the contract (the message names the row or column at fault)."""


class EmbeddingError(TextClusteringError):
    """The embedding model could not be loaded or used."""


class InvalidReplyError(TextClusteringError):
    """An LLM reply that does not fit what was asked (no JSON, wrong count, refused): the
    same prompt to a deterministic model gets the same reply, so it is cached as failed."""


class EngineError(TextClusteringError):
    """The compute engine cannot run the job: a Spark master that cannot be reached, or
    that gives the application no executor (the message says what to start or fix)."""
