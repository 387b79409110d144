"""Score the automatic-eps DBSCAN settings (min_samples x k-distance quantile) on labelled
corpora: how the defaults min_samples=5, quantile 0.85 were chosen (README).

    make eval   # builds bench/data/inputs/*.parquet (id, text, label, embedding)
    D=$(ls bench/data/inputs/debian-20000-*.parquet)
    .venv/bin/python scripts/dbscan_grid.py $D:1000 $D:5000 $D \\
        bench/data/inputs/fortunes-*.parquet \\
        --database output/text_clustering.duckdb   # the demo, after `make demo`

Each input is projected once with the pipeline's own UMAP settings (``project``; cached in
``.cache/grid``), then clustered for every pair; each cell is NMI (noise as its own group) /
clusters / noise share. ``path:n`` takes the first n rows (the bench corpora are shuffled,
so a prefix is a sample).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import normalized_mutual_info_score

from text_clustering import read_arrow, to_numpy
from text_clustering.cluster import auto_eps, fit_clusters
from text_clustering.project import project

CACHE = Path(".cache/grid")


def projected(name: str, vectors: np.ndarray) -> np.ndarray:
    key = hashlib.md5(vectors.tobytes()).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    points = project(vectors)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, points)
    return points


def from_input(spec: str) -> tuple[str, np.ndarray, np.ndarray]:
    path, _, size = spec.partition(":")
    table = pq.read_table(path, columns=["label", "embedding"])
    if size:
        table = table.slice(0, int(size))
    name = f"{Path(path).name.split('-')[0]} {table.num_rows}"
    points = projected(name.replace(" ", "-"), to_numpy(table, "embedding"))
    return name, points, np.asarray([str(v) for v in table["label"].to_pylist()])


def from_database(database: str) -> tuple[str, np.ndarray, np.ndarray]:
    con = duckdb.connect(database, read_only=True)
    table = read_arrow(
        con.sql(
            "select p.projection, s.reference_label from int_texts_projected p "
            "join stg_texts s using (text_id) where s.reference_label is not null "
            "order by text_id"
        )
    )
    labels = np.asarray([str(v) for v in table["reference_label"].to_pylist()])
    return f"demo {table.num_rows}", to_numpy(table, "projection"), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", help="parquet with label and embedding [:n]")
    parser.add_argument("--database", help="a built database with reference labels (demo)")
    parser.add_argument("--min-samples", default="5,6,7,8,10")
    parser.add_argument("--quantiles", default="0.75,0.8,0.85,0.9")
    args = parser.parse_args()
    sets = [from_input(spec) for spec in args.inputs]
    if args.database:
        sets.append(from_database(args.database))
    print("| min_samples | quantile | " + " | ".join(name for name, _, _ in sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for min_samples in [int(v) for v in args.min_samples.split(",")]:
        for quantile in [float(v) for v in args.quantiles.split(",")]:
            cells = []
            for _, points, labels in sets:
                eps = auto_eps(points, min_samples, quantile=quantile)
                found, _ = fit_clusters(points, eps=eps, min_samples=min_samples)
                nmi = normalized_mutual_info_score(labels, found)
                clusters = len(set(found.tolist()) - {-1})
                cells.append(f"{nmi:.3f} / {clusters} / {np.mean(found == -1):.0%}")
            print(f"| {min_samples} | {quantile:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
