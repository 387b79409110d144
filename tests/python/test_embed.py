import numpy as np
import pyarrow as pa
import pytest

from text_clustering import EmbeddingError, InputError, embed_table, embed_texts
from text_clustering.embed import resolve_model_path


def test_bundled_model_resolves_to_a_local_folder():
    path = resolve_model_path("all-MiniLM-L6-v2")
    assert path.endswith("model") and resolve_model_path("my/other-model") == "my/other-model"


def test_bundled_model_embeds_offline_into_unit_vectors_that_mean_something():
    texts = ["a text editor for programmers", "an editor for source code", "a chess game"]
    vectors = embed_texts(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


def test_embed_table_writes_float_arrays_in_input_order():
    table = pa.table({"text_id": ["b", "a"], "text": ["chess", "opera"]})
    out = embed_table(table)
    assert out["text_id"].to_pylist() == ["b", "a"]
    assert out.schema.field("embedding").type == pa.list_(pa.float32(), 384)


def test_precomputed_vectors_pass_through_without_a_model():
    table = pa.table(
        {"text_id": ["a", "b"], "text": ["x", "y"], "pre": pa.array([[1.0, 0.0], [0.0, 1.0]])}
    )
    out = embed_table(table, model_name="not-a-model-that-exists", precomputed_column="pre")
    assert out["embedding"].to_pylist() == [[1.0, 0.0], [0.0, 1.0]]


def test_precomputed_null_vector_is_named():
    table = pa.table({"text_id": ["a", "b"], "text": ["x", "y"], "pre": pa.array([[1.0], None])})
    with pytest.raises(InputError, match="text_id='b'"):
        embed_table(table, precomputed_column="pre")


def test_unknown_model_says_how_to_fix(tmp_path):
    with pytest.raises(EmbeddingError, match=r"could not load embedding model.*all-MiniLM-L6-v2"):
        embed_texts(["x"], model_name=str(tmp_path / "no-such-model"))
