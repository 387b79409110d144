import duckdb
import numpy as np
import openai
import pyarrow as pa
import pytest
from fake_openai import embed_text

from text_clustering import (
    ConfigError,
    EmbeddingError,
    InputError,
    embed_texts,
    embedding_cache,
    to_arrow,
    to_numpy,
)
from text_clustering.embed import OpenAIEmbedder, resolve_model_path
from text_clustering.steps.embedding import embedding_key_sql


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


def test_texts_come_back_in_input_order_though_encoded_by_length():
    texts = ["a fairly long sentence about compilers and linkers", "fonts", "mail server"]
    vectors = embed_texts(texts, log_every=2)
    one_by_one = np.concatenate([embed_texts([text]) for text in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_both_backends_keep_input_order_and_unit_length(backend):
    texts = ["a fairly long sentence about compilers and linkers", "fonts", "mail server", ""]
    vectors = embed_texts(texts, backend=backend, log_every=2)
    one_by_one = np.concatenate([embed_texts([text], backend=backend) for text in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)  # a vector is its text's alone
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


def test_onnx_workers_take_texts_longest_first_and_give_each_its_own_vector():
    from text_clustering.embed import resolve_model_path
    from text_clustering.onnx_backend import CHUNK, load_encoder

    words = ["compiler", "linker", "editor", "font", "mail", "server", "chess", "image", "library"]
    texts = [" ".join(words[: 1 + i % len(words)]) * (1 + i % 3) for i in range(3 * CHUNK + 5)]
    encoder = load_encoder(resolve_model_path("all-MiniLM-L6-v2"), 2)  # two workers
    vectors = encoder.encode(texts)
    alone = np.concatenate([encoder.encode([text]) for text in texts])
    np.testing.assert_array_equal(vectors, alone)  # in input order, each its text's alone


def test_the_onnx_backend_gives_the_torch_vectors_within_int8_error():
    texts = [
        "a text editor for programmers with syntax highlighting and macros",
        "chess engine that plays against you, with an opening book",
        "mail transfer agent with spam filtering",
        "fonts",
        "library for reading and writing PNG images " * 20,  # past the 256-token window
    ]
    onnx = embed_texts(texts, backend="onnx")
    torch = embed_texts(texts, backend="torch")
    cosine = (onnx * torch).sum(axis=1)
    assert cosine.min() > 0.97 and cosine.mean() > 0.99
    again = embed_texts(texts, backend="onnx")
    assert np.array_equal(onnx, again)  # deterministic


def test_the_onnx_session_runs_the_fusions_that_are_faster_here_and_not_the_others(tmp_path):
    import onnx
    import onnxruntime as ort

    from text_clustering.embed import resolve_model_path
    from text_clustering.onnx_backend import exported, open_session

    folder = exported(resolve_model_path("all-MiniLM-L6-v2"))
    open_session(ort, folder / "model.onnx", optimized_copy=tmp_path / "runs.onnx")
    for graph in (folder / "model.onnx", tmp_path / "runs.onnx"):  # as exported, as it runs
        ops = {node.op_type for node in onnx.load(str(graph), load_external_data=False).graph.node}
        assert {"QAttention", "LayerNormalization", "Gelu"} <= ops
        assert not ops & {"SkipLayerNormalization", "BiasGelu"}, graph.name
    assert "DynamicQuantizeMatMul" in ops  # the fusions of a load still run (the last graph)
    options = ort.SessionOptions()  # a session without disabled_optimizers fuses them again
    options.optimized_model_filepath = str(tmp_path / "fused_again.onnx")
    ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
    fused_again = onnx.load(str(tmp_path / "fused_again.onnx"), load_external_data=False).graph.node
    assert "SkipLayerNormalization" in {node.op_type for node in fused_again}


def test_an_export_removes_what_a_killed_export_left_and_leaves_running_ones(tmp_path):
    import os
    import subprocess

    from text_clustering.onnx_backend import remove_abandoned_work

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now (reaped)
    alive = tmp_path / f"work-{os.getpid()}"
    dead = tmp_path / f"work-{gone.pid}"
    for work in (alive, dead):
        work.mkdir()
        (work / "fp32.onnx").write_bytes(b"partial")
    (tmp_path / "model.onnx").write_bytes(b"kept")
    assert remove_abandoned_work(tmp_path) == [dead]
    assert not dead.exists() and (alive / "fp32.onnx").exists()
    assert (tmp_path / "model.onnx").exists()


def test_the_backend_var_is_checked_and_keys_the_cache():
    from text_clustering.embed import local_backend
    from text_clustering.steps.embedding import cache_model

    with pytest.raises(ConfigError, match="`embedding_backend` must be one of onnx, torch"):
        local_backend("all-MiniLM-L6-v2", "tensorflow")
    assert local_backend("all-MiniLM-L6-v2", "onnx") == "onnx"
    assert local_backend("someone/a-hub-model", "onnx") == "torch"  # no local folder to export
    onnx = cache_model("all-MiniLM-L6-v2", {"embedding_backend": "onnx"})
    torch = cache_model("all-MiniLM-L6-v2", {"embedding_backend": "torch"})
    assert torch == "all-MiniLM-L6-v2" and onnx != torch  # switching never mixes vectors
    assert cache_model("all-MiniLM-L6-v2", {}) == onnx  # onnx by default


def test_lists_become_fixed_arrays_in_input_order():
    table = pa.table({"text_id": ["b", "a"], "v": pa.array([[1.0, 0.0], [0.0, 1.0]])})
    out = to_arrow(to_numpy(table, "v"))
    assert out.type == pa.list_(pa.float32(), 2)
    assert out.to_pylist() == [[1.0, 0.0], [0.0, 1.0]]


def test_a_null_vector_is_named_by_its_text_id():
    table = pa.table({"text_id": ["a", "b"], "v": pa.array([[1.0], None])})
    with pytest.raises(InputError, match="text_id='b'"):
        to_numpy(table, "v")


def test_embedding_key_sql_depends_on_model_and_text():
    con = duckdb.connect()

    def key(model, text):
        return con.sql(
            f"select {embedding_key_sql(model, 'x')} from (select ? as x)", params=[text]
        ).fetchall()[0][0]

    assert key("o'model", "hi") != key("model", "hi") != key("model", "ho")
    assert key("model", "hi") == key("model", "hi") and len(key("model", "hi")) == 32


TEXTS = ["chess", "opera", "chess game", "chess", "?!"]  # a repeat, and no words


def cache_rows(model, *, batch_size=64, cached=None):
    """One build of the cache step over TEXTS (``cached``: the cache table so far)."""
    con = duckdb.connect()
    con.register("stg", pa.table({"text": TEXTS, "is_embeddable": [True] * 4 + [False]}))
    this = None
    if cached is not None:
        con.register("cache_rows", cached)
        con.execute("create table cache as select * from cache_rows")
        this = "cache"
    config = {"embedding_model": model, "embedding_batch_size": batch_size}
    return embedding_cache(con, con.sql("select * from stg"), this, config)


def test_the_cache_step_embeds_each_distinct_text_once_locally():
    out = cache_rows("all-MiniLM-L6-v2")
    assert out.num_rows == 3 and len(set(out["embedding_key"].to_pylist())) == 3
    assert set(out["embedding_model"].to_pylist()) == {"all-MiniLM-L6-v2"}
    assert out.schema.field("embedding").type == pa.list_(pa.float32())
    assert len(out["embedding"][0].as_py()) == 384
    assert cache_rows("all-MiniLM-L6-v2", cached=out).num_rows == 0  # all cached


def test_openai_embeddings_go_through_the_endpoint_in_batches(llm_server, monkeypatch):
    url, state = llm_server
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    out = cache_rows("openai:fake-embed", batch_size=2)
    assert state.embedding_calls == 2 and state.embedded_texts == 3
    assert state.requests[0]["model"] == "fake-embed"
    vectors = {tuple(v) for v in out["embedding"].to_pylist()}
    expected = {tuple(np.float32(embed_text(t)).tolist()) for t in ["chess", "opera", "chess game"]}
    assert vectors == expected


def test_openai_embedding_batches_that_keep_failing_are_left_out(llm_server):
    url, state = llm_server
    state.script = ["500", "429", "ok", "500", "500", "500", "500"]  # batch 1 ok on try 3
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    waits = []
    embedder = OpenAIEmbedder(client=client, model="m", batch_size=2, sleep=waits.append)
    vectors, ok = embedder.embed(["chess", "opera", "chess game"])
    assert ok.tolist() == [True, True, False]  # the second batch failed 4 times
    assert vectors.shape == (2, 32) and len(waits) == 2 + 3


def test_openai_embeddings_need_an_endpoint(no_llm_env):
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY and/or OPENAI_BASE_URL"):
        cache_rows("openai:fake-embed")


def test_unknown_model_says_how_to_fix(tmp_path):
    with pytest.raises(EmbeddingError, match=r"could not load embedding model.*all-MiniLM-L6-v2"):
        embed_texts(["x"], model_name=str(tmp_path / "no-such-model"))


@pytest.mark.parametrize("user_choice", [None, "0"])
def test_onnx_runtime_keeps_no_device_id_and_sends_nothing_unless_the_user_says_so(
    tmp_path, user_choice
):
    """ONNX Runtime (1.32 on Linux) writes a device id under ~/.cache/Microsoft and
    uploads events unless ORT_DISABLE_TELEMETRY is set before it loads: the backend sets
    it; a user's own value (here "0": telemetry on) is left to decide."""
    import os
    import subprocess
    import sys

    # ONNX Runtime also stays quiet on CI services it recognises: none of them here
    ci = {"CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL"}
    ci |= {"CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR"}
    ci |= {"BITBUCKET_BUILD_NUMBER", "ORT_DISABLE_TELEMETRY"}
    env = {k: v for k, v in os.environ.items() if k not in ci}
    env["HOME"] = str(tmp_path)
    env.pop("XDG_CACHE_HOME", None)
    if user_choice is not None:
        env["ORT_DISABLE_TELEMETRY"] = user_choice
    code = (
        "import os; from text_clustering import embed_texts; "
        "embed_texts(['a text editor'], backend='onnx'); "
        "print(os.environ['ORT_DISABLE_TELEMETRY'])"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (user_choice or "1")
    device_id = tmp_path / ".cache" / "Microsoft"
    assert device_id.exists() == (user_choice == "0")
