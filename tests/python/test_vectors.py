import duckdb
import numpy as np
import pyarrow as pa
import pytest

from text_clustering import InputError, to_arrow, to_numpy
from text_clustering.vectors import read_arrow


def test_roundtrip_through_duckdb_as_fixed_size_array():
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    table = pa.table({"text_id": ["a", "b", "c", "d"], "v": to_arrow(vectors)})
    con = duckdb.connect()
    con.register("t", table)
    con.execute("create table stored as select * from t")
    column_type = con.sql("select typeof(v) from stored limit 1").fetchall()[0][0]
    assert column_type == "FLOAT[3]"
    back = read_arrow(con.sql("select * from stored order by text_id"))
    assert isinstance(back["v"].type, pa.FixedSizeListType)
    np.testing.assert_array_equal(to_numpy(back, "v"), vectors)


def test_variable_length_lists_of_one_length_are_accepted():
    table = pa.table({"text_id": ["a", "b"], "v": pa.array([[1.0, 2.0], [3.0, 4.0]])})
    np.testing.assert_array_equal(to_numpy(table, "v"), [[1, 2], [3, 4]])


def test_ragged_vectors_name_the_row():
    table = pa.table({"text_id": ["a", "b"], "v": pa.array([[1.0, 2.0], [3.0]])})
    with pytest.raises(InputError, match=r"text_id='b' has 1 values, text_id='a' has 2"):
        to_numpy(table, "v")


def test_null_vector_names_the_row_and_the_fix():
    table = pa.table({"text_id": ["a", "b"], "v": pa.array([[1.0], None])})
    with pytest.raises(InputError, match=r"null at text_id='b'.*embedding_column"):
        to_numpy(table, "v")


def test_nan_vector_names_the_row():
    table = pa.table({"text_id": ["a", "b"], "v": pa.array([[float("nan")], [1.0]])})
    with pytest.raises(InputError, match=r"NaN or infinite values at text_id='a'"):
        to_numpy(table, "v")


def test_non_list_column_is_refused():
    table = pa.table({"text_id": ["a"], "v": pa.array(["x"])})
    with pytest.raises(InputError, match="must hold lists of numbers"):
        to_numpy(table, "v")


def test_to_arrow_needs_a_matrix():
    with pytest.raises(ValueError, match="2-D"):
        to_arrow(np.zeros(3))
