"""The ONNX Runtime embedding backend (var ``embedding_backend: onnx``, the default).

A local sentence-transformers model (by default the bundled all-MiniLM-L6-v2) is exported
once to ONNX from its own weights - offline, nothing is downloaded - with its pooling and
normalisation inside the graph, its attention fused by ONNX Runtime's transformer optimizer
(but not its residual layer norms nor its GELU's bias: :data:`UNFUSED`) and its weights
quantized to int8 per channel (dynamic quantization: activations are quantized on the fly).
The result is cached on disk (:func:`onnx_dir`: the Makefile puts it under the repo,
``.cache/onnx``, and ``make setup`` makes it) and keyed by a hash of the model's files, so a
changed model is exported again.

Encoding needs neither torch nor sentence-transformers (importing them takes ~7 s): the
``tokenizers`` fast tokenizer and one ONNX Runtime session, run on one text at a time (no
padding at all, and a text's vector does not depend on the texts it is embedded with:
dynamic quantization scales each run's activations by that run's own values) by one
single-threaded worker per thread of var n_threads.
ONNX Runtime's own telemetry (on Linux in recent releases, 1.32 included: a device id under
``~/.cache/Microsoft`` and events sent to Microsoft) is turned off before it loads
(:func:`no_telemetry`; docs/privacy.md says what leaves the machine, and when).
Measured against the torch backend in ``make bench`` (speed, cosine of the vectors) and
``make eval`` (clustering scores): docs/performance.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EmbeddingError
from .log import log, progress

BACKENDS = ("onnx", "torch")
CHUNK = 256  # texts tokenized at once (each is then run alone)
FORMAT = "int8-v2"  # what the exported file is; part of its folder's name and the cache key
# Fusions left out, in the export and again when ONNX Runtime loads it (it would redo them):
# its fused kernels ran slower on this CPU (onnxruntime 1.32: SkipLayerNormalization ~230 us
# per 90-token text and layer against ~50-60 us for Add + LayerNormalization; BiasGelu
# ~225 us against ~145 us for Gelu, the bias going into the matmul before it), so the
# whole model took ~21 % less time without them (docs/performance.md). The same math: the
# vectors differ by rounding only (amplified by the int8 steps: cosine mean 0.9997).
UNFUSED = {"enable_skip_layer_norm": "SkipLayerNormFusion", "enable_bias_gelu": "BiasGeluFusion"}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# ONNX Runtime's full opt-out of its telemetry, read once when it first sets up (its
# telemetry_1ds.cc): no uploader, no device id file, no event
TELEMETRY_VARIABLE = "ORT_DISABLE_TELEMETRY"


def no_telemetry() -> None:
    """Turn ONNX Runtime's telemetry off for this process, unless the environment already
    decides (``ORT_DISABLE_TELEMETRY`` set by the user). Call before importing onnxruntime."""
    os.environ.setdefault(TELEMETRY_VARIABLE, "1")


def onnx_dir() -> Path:
    """Where exported models are kept: ``$TEXT_CLUSTERING_ONNX_DIR``, else
    ``~/.cache/text_clustering/onnx``."""
    given = os.environ.get("TEXT_CLUSTERING_ONNX_DIR")
    return Path(given) if given else Path.home() / ".cache" / "text_clustering" / "onnx"


def model_digest(model_path: str) -> str:
    """A hash of a local model folder's files (names and contents), 16 hex digits."""
    digest = hashlib.sha256(FORMAT.encode())
    root = Path(model_path)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def pooling(model_path: str) -> str:
    """``mean`` or ``cls``: how the sentence-transformers model pools its token vectors."""
    config = Path(model_path) / "1_Pooling" / "config.json"
    if not config.exists():
        return "mean"
    settings = json.loads(config.read_text())
    if settings.get("pooling_mode_mean_tokens"):
        return "mean"
    if settings.get("pooling_mode_cls_token"):
        return "cls"
    raise EmbeddingError(
        f"the model at {model_path} pools its tokens in a way the onnx backend does not "
        "export (mean and CLS pooling are supported): set var embedding_backend to torch."
    )


def max_length(model_path: str) -> int:
    config = Path(model_path) / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def exported(model_path: str) -> Path:
    """The folder of ``model_path``'s exported int8 model, made by :func:`export` when
    missing (~20 s, once per machine and model)."""
    folder = onnx_dir() / f"{Path(model_path).name}-{FORMAT}-{model_digest(model_path)}"
    if not (folder / "model.onnx").exists():
        export(model_path, folder)
    return folder


def export(model_path: str, folder: Path) -> Path:
    """Export the model at ``model_path`` to ``folder/model.onnx`` (fused, int8)."""
    start = time.perf_counter()
    log(f"embeddings: exporting {model_path} to ONNX (once) -> {folder}")
    no_telemetry()
    try:
        import onnx
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise EmbeddingError(
            f"exporting the embedding model to ONNX needs torch, transformers, onnx and "
            f"onnxruntime ({exc}); run `make setup`, or set var embedding_backend to torch."
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    mode = pooling(model_path)

    class Pooled(torch.nn.Module):  # the sentence vector, unit length, inside the graph
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if mode == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = tokenizer(["an example", "another, longer example"], padding=True, return_tensors="pt")
    remove_abandoned_work(folder)
    work = folder / f"work-{os.getpid()}"  # two processes exporting at once: their own files
    work.mkdir(exist_ok=True)
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    with torch.no_grad():
        torch.onnx.export(
            Pooled(model),
            tuple(sample[name] for name in _INPUTS),
            str(work / "fp32.onnx"),
            input_names=list(_INPUTS),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    config = model.config
    fusions = FusionOptions("bert")
    for option in UNFUSED:
        setattr(fusions, option, False)
    fused = optimize_model(
        str(work / "fp32.onnx"),
        model_type="bert",
        num_heads=int(config.num_attention_heads),
        hidden_size=int(config.hidden_size),
        opt_level=1,
        optimization_options=fusions,
    )
    fused.save_model_to_file(str(work / "fused.onnx"))
    partial = work / "model-int8.onnx"
    quantize_dynamic(
        str(work / "fused.onnx"),
        str(partial),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    tokenizer_file = Path(model_path) / "tokenizer.json"
    if not tokenizer_file.exists():
        tokenizer.save_pretrained(str(work))
        tokenizer_file = work / "tokenizer.json"
    (work / "tokenizer.json").write_bytes(tokenizer_file.read_bytes())
    (work / "config.json").write_text(
        json.dumps({"max_length": max_length(model_path), "pooling": mode, "format": FORMAT})
    )
    for name in ("tokenizer.json", "config.json", "model.onnx"):  # model.onnx last: complete
        (work / (name if name != "model.onnx" else partial.name)).replace(folder / name)
    shutil.rmtree(work)
    log(f"embeddings: ONNX export done in {time.perf_counter() - start:.1f}s")
    return folder


def remove_abandoned_work(folder: Path) -> list[Path]:
    """Delete the ``work-<pid>`` folders in ``folder`` of exports whose process is gone (one
    killed mid-export leaves up to ~200 MB: the fp32, fused and int8 files); those of
    running exports stay (pids are this machine's: a folder shared by several machines
    should not be exported into by two at once). Returns the folders deleted."""
    removed = []
    for work in folder.glob("work-*"):
        pid = work.name.removeprefix("work-")
        if not pid.isdigit() or _running(int(pid)):
            continue
        shutil.rmtree(work)
        removed.append(work)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def open_session(ort: Any, model_file: Path, optimized_copy: Path | None = None) -> Any:
    """An ONNX Runtime (module ``ort``) session on ``model_file`` as the encoder runs it: on
    the CPU, one thread, without the :data:`UNFUSED` fusions; ``optimized_copy``: where to
    write the graph it runs (for tests)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one single-threaded run per worker: faster here
    options.inter_op_num_threads = 1
    if optimized_copy is not None:
        options.optimized_model_filepath = str(optimized_copy)
    return ort.InferenceSession(
        str(model_file),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(UNFUSED.values()),
    )


class OnnxEncoder:
    """Sentence vectors from an exported model folder (:func:`exported`)."""

    def __init__(self, folder: Path, n_workers: int = 1) -> None:
        no_telemetry()
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingError(
                f"the onnx embedding backend needs onnxruntime and tokenizers ({exc}): run "
                "`make setup`, or set var embedding_backend to torch."
            ) from None
        settings = json.loads((folder / "config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(settings["max_length"]))
        self.tokenizer.no_padding()
        self.session = open_session(ort, folder / "model.onnx")
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.n_workers = max(1, n_workers)

    def encode(self, texts: list[str], log_every: int = 1024) -> np.ndarray:
        """``(n, d)`` unit vectors of ``texts``, in their order."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lock, done, start = threading.Lock(), [0], time.perf_counter()

        def run(first: int) -> None:
            rows = range(first, min(first + CHUNK, len(texts)))
            for row, encoded in zip(
                rows, self.tokenizer.encode_batch([texts[i] or "" for i in rows]), strict=True
            ):
                ids = np.asarray([encoded.ids], dtype=np.int64)
                feed = {
                    "input_ids": ids,
                    "attention_mask": np.ones_like(ids),
                    "token_type_ids": np.zeros_like(ids),
                }
                out[row] = self.session.run(None, feed)[0][0]
            with lock:
                before, done[0] = done[0], done[0] + len(rows)
                if done[0] // log_every > before // log_every or done[0] == len(texts):
                    progress("embedded", done[0], len(texts), start)

        with ThreadPoolExecutor(max_workers=self.n_workers) as pool:
            list(pool.map(run, range(0, len(texts), CHUNK)))
        return out


@lru_cache(maxsize=2)
def load_encoder(model_path: str, n_workers: int) -> OnnxEncoder:
    """The encoder of ``model_path`` (exported first when needed), once per process."""
    return OnnxEncoder(exported(model_path), n_workers)
