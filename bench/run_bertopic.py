"""Fit BERTopic (defaults) on precomputed embeddings; write topics, timings and versions as JSON.

Runs inside ``bench/.venv-bertopic`` (``make bench-setup``), never in the pipeline's venv::

    bench/.venv-bertopic/bin/python bench/run_bertopic.py --input IN.parquet --output OUT.json

IN.parquet has ``text`` and ``embedding`` (FLOAT[d]) columns. The model is ``BERTopic()`` with
every default (UMAP 5-d, HDBSCAN min_cluster_size=10, CountVectorizer, c-TF-IDF) and
``fit_transform(docs, embeddings=...)`` is timed as a whole and by stage, by wrapping the
instance's own stage methods (``_reduce_dimensionality`` = UMAP, ``_cluster_embeddings`` =
HDBSCAN, ``_extract_topics`` = c-TF-IDF + representation, ``_save_representative_docs``).

Nothing is downloaded: with ``embeddings`` given and ``embedding_model=None`` (the default),
BERTopic 0.17.4 never loads a sentence-transformers model (``fit_transform`` calls
``select_backend`` only when embeddings are missing or a model was passed); the script
checks that ``embedding_model`` is still None after the fit and runs with HF_HUB_OFFLINE=1.
``--warmup`` fits a tiny random problem to fill the numba cache (as our ``make setup`` does).
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

STAGES = {
    "_reduce_dimensionality": "umap",
    "_cluster_embeddings": "hdbscan",
    "_extract_topics": "ctfidf_representation",
    "_save_representative_docs": "representative_docs",
}
PACKAGES = (
    "bertopic",
    "umap-learn",
    "hdbscan",
    "scikit-learn",
    "numpy",
    "pandas",
    "numba",
    "torch",
    "sentence-transformers",
)


def timed(method: Callable[..., Any], name: str, seconds: dict[str, float]) -> Callable[..., Any]:
    """Wrap a bound method so each call adds its wall time to ``seconds[name]``."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start

    return wrapper


def fit(docs: list[str], embeddings: Any) -> dict[str, Any]:
    """``BERTopic().fit_transform(docs, embeddings=embeddings)``, timed by stage."""
    from bertopic import BERTopic

    model = BERTopic()
    seconds: dict[str, float] = {}
    for method, stage in STAGES.items():
        setattr(model, method, timed(getattr(model, method), stage, seconds))
    start = time.perf_counter()
    topics, _ = model.fit_transform(docs, embeddings=embeddings)
    seconds["fit_transform"] = time.perf_counter() - start
    seconds["other"] = seconds["fit_transform"] - sum(seconds[s] for s in STAGES.values())
    if model.embedding_model is not None:
        raise RuntimeError(f"BERTopic loaded an embedding model: {model.embedding_model!r}")
    return {
        "topics": [int(t) for t in topics],
        "seconds": seconds,
        "n_topics": len(set(topics) - {-1}),
        "umap_model": repr(model.umap_model),
        "hdbscan_model": repr(model.hdbscan_model),
        "embedding_model": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Fit BERTopic on precomputed embeddings; JSON out.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, help="parquet with text and embedding columns")
    parser.add_argument("--output", type=Path, help="JSON to write")
    parser.add_argument("--warmup", action="store_true", help="fill the numba cache and exit")
    args = parser.parse_args()
    start = time.perf_counter()
    import numpy as np

    if args.warmup:
        rng = np.random.default_rng(0)
        centres = rng.normal(size=(5, 16))
        vectors = centres[rng.integers(0, 5, 500)] + 0.1 * rng.normal(size=(500, 16))
        words = ["alpha beta", "gamma delta", "epsilon zeta", "eta theta", "iota kappa"]
        fit([words[i % 5] for i in range(500)], vectors.astype(np.float32))
        print(f"BERTopic numba cache warm in {time.perf_counter() - start:.1f}s")
        return
    if not args.input or not args.output:
        parser.error("--input and --output are required (unless --warmup)")
    import pyarrow.parquet as pq

    table = pq.read_table(args.input, columns=["text", "embedding"])
    docs = table["text"].to_pylist()
    column = table["embedding"].combine_chunks()
    embeddings = np.asarray(column.flatten(), dtype=np.float32).reshape(len(docs), -1)
    loaded = time.perf_counter()
    result = fit(docs, embeddings)
    result["seconds"]["startup_and_read"] = loaded - start
    result["n_texts"] = len(docs)
    result["versions"] = {name: metadata.version(name) for name in PACKAGES}
    result["python"] = sys.version.split()[0]
    result["self_max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    write_json(args.output, result)
    print(f"BERTopic: {result['n_topics']} topics in {result['seconds']['fit_transform']:.1f}s")


if __name__ == "__main__":
    main()
