"""How many UMAP layout epochs do large fits need? (epochs.md, ``make bench-epochs``)

For the ``make eval`` sets of 15k-20k texts and 100k WordNet glosses (``--sets``), our
default build (vectors given, as ``make eval``) with var ``n_epochs`` set to each of
``--epochs``; level-0 NMI and AMI against the set's labels (noise as its own group), the
clusters found and the projection step's time (``int_texts_projected``: the kNN graph,
the layout and the placement of the texts outside the fit). umap-learn lays out fits of
more than 10,000 texts with 200 epochs; the pipeline's default (var ``n_epochs: null``,
``projection.layout_epochs``) keeps 200 up to 20,000 fitted texts and goes down to 100 from
40,000 (a fit is at most var ``max_fit_rows`` texts; ``fit_rows.py`` studies that size).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import RESULTS, WORK, log, write_report
from embed import input_file
from eval import parse_sets
from report import fmt, machine, machine_markdown, secs, table
from run_ours import sweep

DEFAULT_SETS = "debian:20000,debian_families:20000,fortunes,wordnet:20000,wordnet:100000"
DEFAULT_EPOCHS = "200,100,50"


def run_set(corpus: str, size: int | None, epochs: list[int]) -> list[dict[str, Any]]:
    label = f"{corpus} ({size or 'all'})"
    return sweep(input_file(corpus, size), label, "n_epochs", epochs, WORK / "epochs")


def markdown(results: dict[str, Any]) -> str:
    from text_clustering.projection import layout_epochs
    from text_clustering.steps.projection import ProjectionSettings

    lines = study_head("UMAP layout epochs of large fits", "epochs.py", __doc__, results)
    rows = []
    most = largest_per_set(results["rows"], "n_epochs")  # per set, the run with the most epochs
    for row in results["rows"]:
        base = most[row["set"]]
        fitted = min(row["texts"] or 0, ProjectionSettings().max_fit_rows)
        default = " (default)" if layout_epochs(fitted) == row["n_epochs"] else ""
        rows.append(
            [
                row["set"],
                f"{row['n_epochs']}{default}",
                secs(row["projection_seconds"]),
                secs(row["wall_seconds"]),
                row["clusters"],
                fmt(row["nmi"]),
                fmt(row["ami"]),
                fmt(row["nmi"] - base["nmi"]) if row is not base else "",
                fmt(row["ami"] - base["ami"]) if row is not base else "",
                row["load"],
            ]
        )
    header = ["set", "n_epochs", "projection", "build wall", "clusters", "NMI", "AMI"]
    header += ["NMI - most epochs'", "AMI - most epochs'", "load average"]
    lines += [table(header, rows), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=DEFAULT_SETS)
    parser.add_argument("--epochs", default=DEFAULT_EPOCHS)
    parser.add_argument("--output", type=Path, default=RESULTS / "epochs")
    args = parser.parse_args()
    run_study(args.sets, args.epochs, args.output, run_set, markdown)


def study_head(title: str, script: str, doc: str, results: dict[str, Any]) -> list[str]:
    """A study report's first lines: ``title``, who made it and when, the script's docstring
    ``doc`` after its first paragraph as the introduction, the machine."""
    intro = " ".join(doc.split("\n", 2)[2].split()).replace("``", "`")
    return [
        f"# {title}",
        "",
        f"Made by `bench/{script}` on {results['finished']}. {intro}",
        "",
        machine_markdown(results["machine"], None),
        "",
    ]


def largest_per_set(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Per ``row["set"]``, the row with the largest ``row[key]`` (the first of equals)."""
    largest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row[key] > largest.get(row["set"], {key: 0})[key]:
            largest[row["set"]] = row
    return largest


def run_study(
    sets: str,
    values: str,
    output: Path,
    run_set: Callable[[str, int | None, list[int]], list[dict[str, Any]]],
    markdown: Callable[[dict[str, Any]], str],
) -> None:
    """``run_set(corpus, size, values)`` for each of ``sets`` (``corpus:n,...``), the values
    (``"200,100"``) largest first; the report (``output``.md/.json) rewritten after each set
    (this study's and ``fit_rows.py``'s)."""
    ordered = sorted((int(v) for v in values.split(",")), reverse=True)
    results: dict[str, Any] = {"machine": machine(), "rows": []}
    for corpus, size in parse_sets(sets):
        results["rows"] += run_set(corpus, size, ordered)
        results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        write_report(output, results, markdown)
    log(f"wrote {output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
