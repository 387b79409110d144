"""Move vectors between DuckDB and NumPy as Arrow, without per-row Python.

DuckDB ``FLOAT[d]`` (ARRAY) arrives as an Arrow ``FixedSizeList``; ``FLOAT[]`` (LIST) as a
``List``. Both become an ``(n, d)`` float32 array; going back, an ``(n, d)`` array becomes a
``FixedSizeList<float32>[d]`` that DuckDB stores as ``FLOAT[d]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError


def read_arrow(relation: Any) -> pa.Table:
    """Materialise a DuckDB relation (or anything Arrow-like) as a ``pyarrow.Table``."""
    if isinstance(relation, pa.Table):
        return relation
    result = relation.arrow()
    return result.read_all() if hasattr(result, "read_all") else result


def to_numpy(table: pa.Table, column: str, *, id_column: str = "text_id") -> np.ndarray:
    """Return ``table[column]`` (a list/array column of numbers) as an ``(n, d)`` float32 array.

    Raises :class:`InputError` naming the first row (by ``id_column``) whose vector is null,
    has another length than the first row, or holds a non-finite value.
    """
    if column not in table.column_names:
        raise InputError(f"column `{column}` not found; the table has {table.column_names}")
    values = table[column].combine_chunks()
    n = len(values)
    if n == 0:
        dim = values.type.list_size if isinstance(values.type, pa.FixedSizeListType) else 0
        return np.zeros((0, dim), dtype=np.float32)

    def row_id(index: int) -> str:
        if id_column in table.column_names:
            return f"{id_column}={table[id_column][index].as_py()!r}"
        return f"row {index}"

    if values.null_count:
        first = pc.index(pc.is_null(values), True).as_py()
        raise InputError(
            f"column `{column}` is null at {row_id(first)}: every embedded text needs a vector. "
            f"Fill it, or leave var embedding_column unset so the pipeline embeds the texts."
        )
    if isinstance(values.type, pa.FixedSizeListType):
        dim = values.type.list_size
        flat = values.flatten()
    elif isinstance(values.type, pa.ListType | pa.LargeListType):
        lengths = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        dim = int(lengths[0])
        bad = np.flatnonzero(lengths != dim)
        if bad.size:
            raise InputError(
                f"column `{column}` has vectors of different lengths: {row_id(int(bad[0]))} "
                f"has {int(lengths[bad[0]])} values, {row_id(0)} has {dim}. "
                "All must share one dimension."
            )
        flat = values.flatten()
    else:
        raise InputError(
            f"column `{column}` must hold lists of numbers (FLOAT[] or FLOAT[d]), "
            f"not {values.type}."
        )
    if flat.null_count:
        first = pc.index(pc.is_null(flat), True).as_py() // max(dim, 1)
        raise InputError(
            f"column `{column}` has a null value inside the vector at {row_id(first)}."
        )
    array = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, dim)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise InputError(
            f"column `{column}` has NaN or infinite values at "
            f"{row_id(int(np.flatnonzero(~finite)[0]))}."
        )
    return array


def to_arrow(array: np.ndarray) -> pa.Array:
    """Wrap an ``(n, d)`` array as ``FixedSizeList<float32>[d]`` (DuckDB ``FLOAT[d]``).

    An input with no rows and no known dimension (``(0, 0)``) becomes an empty
    ``List<float32>`` (DuckDB ``FLOAT[]``): DuckDB has no zero-sized arrays.
    """
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D array (n, d), got shape {matrix.shape}")
    dim = matrix.shape[1]
    if dim == 0:
        return pa.array([], pa.list_(pa.float32()))
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a new float32 array); all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
