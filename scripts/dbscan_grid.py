"""Score the automatic-eps DBSCAN settings (min_samples x k-distance quantile x noise policy)
on labelled corpora: how the defaults min_samples=5, quantile 0.75, noise_policy centroid
were chosen (docs/defaults.md).

    make eval   # builds bench/data/inputs/*.parquet (id, text, label, embedding)
    D=$(ls bench/data/inputs/debian-20000-*.parquet)
    .venv/bin/python scripts/dbscan_grid.py $D:1000 $D:5000 $D \\
        bench/data/inputs/fortunes-*.parquet bench/data/inputs/wordnet-20000-*.parquet \\
        --database output/text_clustering.duckdb   # the demo, after `make demo`

Each input is projected ``--layouts`` times with the pipeline's own UMAP settings (layout i
sees the rows in a fixed-seed shuffled order with ``random_state`` 42 + i: how much a score
moves with the layout alone; cached in ``.cache/grid``), then clustered for every setting.
Each cell is NMI (noise as its own group) / AMI / clusters / noise share / largest cluster's
share, averaged over the layouts. ``path:n`` takes the first n rows (the bench corpora are
shuffled, so a prefix is a sample).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import adjusted_mutual_info_score

from text_clustering import UMAPProjector, to_numpy
from text_clustering.clustering import (
    auto_eps,
    cluster_centroids,
    density_labels,
    reassign_to_centroids,
)
from text_clustering.metrics import nmi
from text_clustering.vectors import read_arrow


def project(vectors: np.ndarray, **params: int) -> np.ndarray:
    return UMAPProjector(**params).fit_transform(vectors)


CACHE = Path(".cache/grid")


def layouts(name: str, vectors: np.ndarray, count: int) -> list[np.ndarray]:
    """``count`` UMAP layouts of ``vectors`` (row i of each is vectors[i]), cached."""
    key = hashlib.md5(vectors.tobytes()).hexdigest()[:16]
    out = []
    for i in range(count):
        path = CACHE / f"{name}-{key}-{i}.npy"
        if not path.exists():
            order = np.random.default_rng(i).permutation(len(vectors)) if i else None
            if order is None:
                points = project(vectors)
            else:
                points = np.empty((len(vectors), 2), dtype=np.float32)
                points[order] = project(vectors[order], random_state=42 + i)
            CACHE.mkdir(parents=True, exist_ok=True)
            np.save(path, points)
        out.append(np.load(path))
    return out


def from_input(spec: str) -> tuple[str, np.ndarray, np.ndarray]:
    path, _, size = spec.partition(":")
    table = pq.read_table(path, columns=["label", "embedding"])
    if size:
        table = table.slice(0, int(size))
    name = f"{Path(path).name.split('-')[0]} {table.num_rows}"
    labels = np.asarray([str(v) for v in table["label"].to_pylist()])
    return name, to_numpy(table, "embedding"), labels


def from_database(database: str) -> tuple[str, np.ndarray, np.ndarray]:
    con = duckdb.connect(database, read_only=True)
    table = read_arrow(
        con.sql(
            "select e.embedding, s.reference_label from int_texts_embedded e "
            "join stg_texts s using (text_id) where s.reference_label is not null "
            "order by text_id"
        )
    )
    labels = np.asarray([str(v) for v in table["reference_label"].to_pylist()])
    return f"demo {table.num_rows}", to_numpy(table, "embedding"), labels


def score(
    points: np.ndarray,
    vectors: np.ndarray,
    labels: np.ndarray,
    min_samples: int,
    quantile: float,
    policy: str,
) -> tuple[float, float, int, float, float]:
    eps = auto_eps(points, min_samples, quantile=quantile)
    found, _ = density_labels(points, eps=eps, min_samples=min_samples)
    if policy == "centroid":
        reassign_to_centroids(vectors, found, cluster_centroids(vectors, found))
    sizes = np.bincount(found[found >= 0]) if (found >= 0).any() else np.zeros(1)
    return (
        nmi(labels, found.astype(str)),
        adjusted_mutual_info_score(labels, found),
        int((sizes > 0).sum()),
        float(np.mean(found == -1)),
        float(sizes.max() / len(found)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", help="parquet with label and embedding [:n]")
    parser.add_argument("--database", help="a built database with reference labels (demo)")
    parser.add_argument("--min-samples", default="5,10")
    parser.add_argument("--quantiles", default="0.7,0.75,0.8,0.85")
    parser.add_argument("--policies", default="keep,centroid")
    parser.add_argument("--layouts", type=int, default=3, help="UMAP layouts per corpus")
    args = parser.parse_args()
    sets = [from_input(spec) for spec in args.inputs]
    if args.database:
        sets.append(from_database(args.database))
    projected = [layouts(n.replace(" ", "-"), v, args.layouts) for n, v, _ in sets]
    print("| min_samples | quantile | noise policy | " + " | ".join(n for n, _, _ in sets) + " |")
    print("|---|---|---|" + "---|" * len(sets))
    for min_samples in [int(v) for v in args.min_samples.split(",")]:
        for quantile in [float(v) for v in args.quantiles.split(",")]:
            for policy in args.policies.split(","):
                cells = []
                for (_, vectors, labels), points in zip(sets, projected, strict=True):
                    setting = (min_samples, quantile, policy)
                    m = np.mean([score(p, vectors, labels, *setting) for p in points], axis=0)
                    cells.append(f"{m[0]:.3f} / {m[1]:.3f} / {m[2]:.0f} / {m[3]:.0%} / {m[4]:.0%}")
                row = f"| {min_samples} | {quantile:.2f} | {policy} | "
                print(row + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
