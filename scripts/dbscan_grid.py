"""Score DBSCAN settings on a built projection against reference labels (how the defaults
eps=0.3, min_samples=15 were chosen; see README).

    make demo && .venv/bin/python scripts/dbscan_grid.py

Joins the demo build's projection to the demo file's `section` column and prints, for each
(eps, min_samples), the clusters found, the noise share, NMI and ARI (noise counted as its
own group).
"""

from __future__ import annotations

import argparse

import duckdb
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from text_clustering import cluster, read_arrow, to_numpy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="output/text_clustering.duckdb")
    parser.add_argument("--source", default="data/debian_packages.parquet")
    parser.add_argument("--reference-column", default="section")
    args = parser.parse_args()
    con = duckdb.connect(args.database, read_only=True)
    reference = '"' + args.reference_column.replace('"', '""') + '"'  # a quoted identifier
    table = read_arrow(
        con.sql(
            f"select p.text_id, p.projection, s.{reference} as reference "
            "from int_texts_projected p join stg_texts t using (text_id) "
            "join read_parquet(?) s on s.text = t.text order by p.text_id",
            params=[args.source],
        )
    )
    points, truth = to_numpy(table, "projection"), table["reference"].to_pylist()
    print(f"{len(truth)} texts\n\n| eps | min_samples | clusters | noise | NMI | ARI |")
    print("|---|---|---|---|---|---|")
    for eps in (0.2, 0.3, 0.4, 0.5):
        for min_samples in (5, 10, 15, 25):
            found = cluster(points, eps=eps, min_samples=min_samples)
            print(
                f"| {eps} | {min_samples} | {found.max() + 1} | {(found == -1).mean():.1%} "
                f"| {normalized_mutual_info_score(truth, found):.3f} "
                f"| {adjusted_rand_score(truth, found):.3f} |"
            )


if __name__ == "__main__":
    main()
