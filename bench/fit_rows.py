"""How many texts must UMAP and the clustering be fitted on? (fit_rows.md, ``make bench-fit``)

On the sets larger than a fit (100k WordNet glosses, 1M synthetic texts: ``--sets``), our
default build (vectors given, as ``make eval``) with var ``max_fit_rows`` set to each of
``--values``: the texts outside the fit are projected onto it and assigned to its clusters.
Per build: the projection and clustering steps' times, the build's wall and peak RSS, the
clusters found, level-0 NMI and AMI against the set's labels (noise as its own group), the
best layer of the topic hierarchy by ARI, and the differences from the largest fit. The
layout's epochs follow the fit's size (var ``n_epochs: null``: ``projection.layout_epochs``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common import RESULTS, WORK
from corpora import synthetic_input
from embed import input_file
from epochs import largest_per_set, run_study, study_head
from report import fmt, gb, secs, table
from run_ours import sweep

DEFAULT_SETS = "wordnet:100000,synthetic:1000000"
DEFAULT_VALUES = "50000,40000,30000,20000"


def run_set(corpus: str, size: int | None, values: list[int]) -> list[dict[str, Any]]:
    synthetic = corpus == "synthetic"
    source = synthetic_input(size or 1_000_000) if synthetic else input_file(corpus, size)
    label = f"{corpus} ({size or 'all'})"
    return sweep(source, label, "max_fit_rows", values, WORK / "fit_rows")


def markdown(results: dict[str, Any]) -> str:
    from text_clustering.projection import layout_epochs
    from text_clustering.steps.projection import ProjectionSettings

    title = "UMAP and clustering fit size on large tables"
    lines = study_head(title, "fit_rows.py", __doc__, results)
    largest = largest_per_set(results["rows"], "max_fit_rows")  # per set, the largest fit
    rows = []
    for row in results["rows"]:
        base, best = largest[row["set"]], row["best_layer"]
        default = " (default)" if row["max_fit_rows"] == ProjectionSettings().max_fit_rows else ""
        fitted = min(row["texts"] or 0, row["max_fit_rows"])

        def diff(key: str, row: dict[str, Any] = row, base: dict[str, Any] = base) -> str:
            return fmt(row[key] - base[key]) if row is not base and row[key] is not None else ""

        rows.append(
            [
                row["set"],
                f"{row['max_fit_rows']}{default}",
                layout_epochs(fitted),
                secs(row["projection_seconds"]),
                secs(row["clustering_seconds"]),
                secs(row["wall_seconds"]),
                gb(row["peak_rss_bytes"]),
                row["clusters"],
                fmt(row["nmi"]),
                fmt(row["ami"]),
                diff("nmi"),
                diff("ami"),
                f"L{best['level']} {best['n_clusters']}, {fmt(best['ari'])}",
                row["load"],
            ]
        )
    header = ["set", "max_fit_rows", "layout epochs", "projection", "clustering", "build wall"]
    header += ["peak RSS", "clusters", "NMI", "AMI", "NMI - largest fit's", "AMI - largest fit's"]
    header += ["best layer: topics, ARI", "load average"]
    lines += [table(header, rows), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=DEFAULT_SETS)
    parser.add_argument("--values", default=DEFAULT_VALUES)
    parser.add_argument("--output", type=Path, default=RESULTS / "fit_rows")
    args = parser.parse_args()
    run_study(args.sets, args.values, args.output, run_set, markdown)


if __name__ == "__main__":
    main()
