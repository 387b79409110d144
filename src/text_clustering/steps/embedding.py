"""The embedding steps: the embedding cache (int_embedding_cache) and the embeddings of the
current texts (int_texts_embedded), both incremental, both moved as DuckDB relations so no
vector is copied through Python that need not be."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..config import read_int, read_optional_int, read_str
from ..embed import OPENAI_PREFIX, embed, local_backend
from ..errors import ConfigError, InputError
from ..log import log
from ..onnx_backend import FORMAT
from ..redact import check_classes
from ..runtime import use_threads
from ..vectors import read_arrow, to_numpy
from .projection import preload_layout

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


def cache_model(model_name: str, config: Mapping[str, Any]) -> str:
    """What the cache key names as the model: var embedding_model; with the onnx backend
    (var embedding_backend) its export format too (its vectors differ slightly from
    torch's: switching never mixes them); for an endpoint (``openai:...``, which is sent
    redacted texts) the classes of var redact, so vectors of texts redacted otherwise are
    never reused."""
    if model_name.startswith(OPENAI_PREFIX):
        return f"{model_name} redact:{','.join(check_classes(config.get('redact')))}"
    if local_backend(model_name, backend_of(config)) == "onnx":
        return f"{model_name} onnx:{FORMAT}"
    return model_name


def backend_of(config: Mapping[str, Any]) -> str:
    """Var embedding_backend (default ``onnx``)."""
    return read_str("embedding_backend", config.get("embedding_backend"), required=False) or "onnx"


def embedding_cache(
    connection: Any, texts: Any, this: Any | None, config: Mapping[str, Any]
) -> pa.Table:
    """int_embedding_cache: the rows to append for the embeddable texts of ``texts``
    (stg_texts) not yet in the cache ``this`` (None on a first or full-refresh build), from
    dbt config (vars embedding_model, embedding_batch_size, embedding_column, n_threads).
    Nothing to embed when the input brings its own vectors (var embedding_column)."""
    model_name = read_str("embedding_model", config.get("embedding_model"))
    assert model_name is not None
    batch_size = read_int("embedding_batch_size", config.get("embedding_batch_size"), minimum=1)
    own = read_str("embedding_column", config.get("embedding_column"), required=False)
    n_threads = read_optional_int("n_threads", config.get("n_threads"), minimum=1)
    texts = texts.filter("is_embeddable")
    if own:
        texts = texts.limit(0)  # the input brings its own vectors: nothing to embed
    key = embedding_key_sql(cache_model(model_name, config))
    missing = texts.select(f"{key} as embedding_key, text").distinct()
    if this is not None:
        cached = connection.sql(f"select embedding_key from {this}")
        missing = missing.join(cached, "embedding_key", how="anti")
    todo = read_arrow(missing.order("embedding_key"))
    if not todo.num_rows:
        log(f"embeddings: all texts already in the cache for {model_name}: nothing to embed")
        return CACHE_SCHEMA.empty_table()
    use_threads(n_threads)
    backend = "endpoint" if model_name.startswith(OPENAI_PREFIX) else backend_of(config)
    log(
        f"embeddings: {todo.num_rows} text(s) not in the cache, embedding with {model_name} "
        f"({local_backend(model_name, backend) if backend != 'endpoint' else backend})"
    )
    vectors, ok = embed(
        todo["text"].to_pylist(),
        model_name=model_name,
        batch_size=batch_size,
        redact=check_classes(config.get("redact")),
        backend=backend_of(config),
    )
    keys = todo["embedding_key"] if ok is None else todo["embedding_key"].filter(pa.array(ok))
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


def embedded_texts(
    connection: Any,
    this: Any | None,
    texts: Any,
    cache: Any,
    own_vectors: Any,
    config: Mapping[str, Any],
) -> Any:
    """int_texts_embedded: ``(text_id, embedding FLOAT[d])`` of every embeddable text, from
    the cache or from the input's own vectors (``own_vectors``: stg_text_vectors, var
    embedding_column); only new or changed rows are written (:func:`embedded_increment`)."""
    model_name = read_str("embedding_model", config.get("embedding_model"))
    assert model_name is not None
    own = read_str("embedding_column", config.get("embedding_column"), required=False)
    texts = texts.filter("is_embeddable")
    if this is None:  # a first (or full-refresh) build: the projection fits UMAP next
        preload_layout()
    if own:
        own_vectors = own_vectors.select("source_row, precomputed_embedding as embedding")
        vectors = texts.join(own_vectors, "source_row").select("text_id, embedding")
    else:
        key = embedding_key_sql(cache_model(model_name, config))
        keyed = texts.select(f"text_id, {key} as embedding_key")
        vectors = keyed.join(cache, "embedding_key").select("text_id, embedding")
    return embedded_increment(connection, vectors, this)


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
    vectors = vectors.select("text_id, embedding")
    dim = _checked_dim(vectors)
    rows = vectors.order("text_id")
    if this is not None and dim is not None:
        stored = str(connection.sql(f"select embedding from {this} limit 0").types[0])
        if stored != f"FLOAT[{dim}]":
            raise ConfigError(
                f"the embeddings now have {dim} dimensions but int_texts_embedded stores "
                f"{stored} (var embedding_model or embedding_column changed). Rebuild it: "
                "dbt build --full-refresh --select int_texts_embedded+"
            )
    if dim is None:  # nothing to write: keep the column's type
        return rows.limit(0)
    return rows.select(f"text_id, cast(embedding as float[{dim}]) as embedding")


def _checked_dim(vectors: Any) -> int | None:
    """The one dimension of the ``(text_id, embedding)`` relation ``vectors`` (None: no
    rows), checked in DuckDB without sorting them or moving a vector through Python; a
    null, ragged or non-finite vector (or one with a null value) stops the build naming the
    first such text by ``text_id`` (:func:`_read_dim`)."""
    n, low, high, bad = vectors.aggregate(
        "count(*), min(len(embedding)), max(len(embedding)), "
        "count(*) filter (where embedding is null or list_count(embedding) != len(embedding) "
        "or not isfinite(list_sum(embedding)))"
    ).fetchall()[0]
    if n == 0:
        return None
    return int(low) if low == high and not bad else _read_dim(vectors.order("text_id"))


def _read_dim(rows: Any) -> int | None:
    """The vectors' dimension from reading them batch by batch, naming the first bad one."""
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
    return dim
