"""Fit Toponymy's layered clusterer with every default on one set; JSON out.

Runs in Toponymy's own venv (``bench/.venv-toponymy``, ``make bench-setup-toponymy``, pins in
``requirements-toponymy.txt``), like ``run_bertopic.py`` in BERTopic's. The input is an
``.npz`` with ``points`` (n, 2), our pipeline's 2-D projection of the texts, and ``vectors``
(n, d), their embeddings: ``ToponymyClusterer().fit(clusterable_vectors=points,
embedding_vectors=vectors)``, as Toponymy is meant to be used (it clusters a low-dimensional
map and uses the vectors for its layers). Writes every layer's labels (-1 = noise), the fit
seconds and the package versions. No LLM: the naming half of Toponymy is not run.

    bench/.venv-toponymy/bin/python bench/run_toponymy.py --input SET.npz --output OUT.json
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import metadata
from pathlib import Path

import numpy as np

PACKAGES = ("toponymy", "fast_hdbscan", "numba", "numpy", "scikit-learn", "torch")


def fit_layers(points: np.ndarray, vectors: np.ndarray) -> tuple[list[list[int]], float]:
    """Every layer's cluster labels (finest first) and the fit seconds."""
    from toponymy import ToponymyClusterer

    start = time.perf_counter()
    clusterer = ToponymyClusterer().fit(clusterable_vectors=points, embedding_vectors=vectors)
    seconds = time.perf_counter() - start
    layers = [np.asarray(layer.cluster_labels).tolist() for layer in clusterer.cluster_layers_]
    return layers, seconds


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help=".npz with points, vectors")
    parser.add_argument("--output", type=Path, required=True, help="JSON to write")
    args = parser.parse_args()
    data = np.load(args.input)
    layers, seconds = fit_layers(data["points"], data["vectors"])
    result = {"layers": layers, "fit_seconds": seconds, "versions": versions()}
    args.output.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
