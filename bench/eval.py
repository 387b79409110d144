"""Evaluate our pipeline's DEFAULT settings on labelled corpora: ``make eval``.

For every evaluation set (a corpus and a sample size, see ``--sets``) the same input file
(texts, reference labels and the same precomputed embeddings, see embed.py) goes to:

- ours: ``dbt build`` with only the input vars (text/id/label/embedding columns), no tuning;
- BERTopic with every default (``fit_transform(docs, embeddings=...)``, its own venv);
- a KMeans oracle on the embeddings with k = the number of reference classes (it is told k).

Scores (NMI, ARI with noise counted as its own group; NMI without the noise; noise share;
clusters) go to ``bench/results/eval.md`` and ``eval.json``, rewritten after every set.
Each set starts from a fresh database (cold build); the work files stay in ``bench/work/eval``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from common import RESULTS, WORK, log, read_json, run_bertopic, write_json
from corpora import DESCRIPTIONS
from embed import input_file
from report import fmt, gb, machine, machine_markdown, secs, table
from run_ours import run_pipeline
from scores import kmeans_oracle, scores

DEFAULT_SETS = "debian:1000,debian:5000,debian:20000,fortunes,wordnet:20000"
MAX_NOISE = 0.20


def parse_sets(text: str) -> list[tuple[str, int | None]]:
    """``debian:1000,fortunes`` -> ``[("debian", 1000), ("fortunes", None)]``."""
    sets: list[tuple[str, int | None]] = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        corpus, _, size = item.partition(":")
        sets.append((corpus, int(size) if size else None))
    return sets


def evaluate(corpus: str, size: int | None) -> dict[str, Any]:
    """Ours, BERTopic and the KMeans oracle on one evaluation set."""
    source = input_file(corpus, size)
    data = pq.read_table(source, columns=["label", "embedding"])
    reference = data["label"].to_pylist()
    n = len(reference)
    run_dir = WORK / "eval" / f"{corpus}-{n}"
    shutil.rmtree(run_dir, ignore_errors=True)
    result: dict[str, Any] = {
        "corpus": corpus,
        "n_texts": n,
        "n_classes": len(set(reference)),
        "input": str(source),
    }
    result["ours"] = run_pipeline(source, run_dir, name="ours")
    bertopic = run_bertopic(source, run_dir)
    if "topics" in bertopic:
        bertopic["scores"] = scores(reference, bertopic.pop("topics"))
    result["bertopic"] = bertopic
    vectors = np.asarray(data["embedding"].combine_chunks().flatten(), dtype=np.float32)
    result["kmeans"] = kmeans_oracle(vectors.reshape(n, -1), reference)
    ours, theirs = result["ours"].get("scores"), bertopic.get("scores")
    result["meets"] = {
        "nmi_ge_bertopic": (ours["nmi"] >= theirs["nmi"]) if ours and theirs else None,
        "noise_le_20pct": (ours["noise_share"] <= MAX_NOISE) if ours else None,
    }
    return result


def markdown(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """eval.md: a table per evaluation set."""
    versions = next((r["bertopic"].get("versions") for r in results if "bertopic" in r), None)
    out = [
        "# Evaluation: our defaults vs BERTopic defaults vs a KMeans oracle",
        "",
        f"Made by `make eval` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "Every method gets the same texts and the same all-MiniLM-L6-v2 embeddings (computed "
        "once with our library's embedder). Ours runs with default settings (only the input "
        "vars); BERTopic is `BERTopic().fit_transform(docs, embeddings=...)` with all defaults "
        "(no embedding model loaded, nothing downloaded); KMeans is told k = the number of "
        "reference classes (`random_state=42, n_init=10`), an oracle, not a competitor.",
        "",
        "NMI, ARI and AMI count noise (-1) as one more group; *NMI excl. noise* scores only "
        "the texts a method put in a cluster; *largest cluster* is the share of all texts in "
        "the biggest one (a catch-all cluster shows there). AMI is NMI corrected for chance "
        "(NMI rises with "
        "the number of clusters even for random ones; AMI does not), shown to tell a better "
        "grouping from more groups. Targets for ours: NMI >= BERTopic's, noise <= 20 %.",
        "",
        machine_markdown(info, versions),
    ]
    for r in results:
        ours, bt, km = r["ours"], r["bertopic"], r["kmeans"]
        o, b = ours.get("scores") or {}, bt.get("scores") or {}
        out += [
            f"## {r['corpus']}, {r['n_texts']} texts, {r['n_classes']} classes",
            "",
            DESCRIPTIONS.get(r["corpus"], "") + ".",
            "",
            table(
                [
                    "method",
                    "NMI",
                    "ARI",
                    "AMI",
                    "noise share",
                    "clusters",
                    "largest cluster",
                    "NMI excl. noise",
                    "wall",
                    "peak RSS",
                ],
                [
                    [
                        "ours (defaults)",
                        o.get("nmi"),
                        o.get("ari"),
                        o.get("ami"),
                        o.get("noise_share"),
                        o.get("n_clusters"),
                        o.get("largest_cluster_share"),
                        o.get("nmi_excluding_noise"),
                        secs(ours.get("wall_seconds")),
                        gb(ours.get("peak_rss_bytes")),
                    ],
                    [
                        "BERTopic (defaults)",
                        b.get("nmi"),
                        b.get("ari"),
                        b.get("ami"),
                        b.get("noise_share"),
                        b.get("n_clusters"),
                        b.get("largest_cluster_share"),
                        b.get("nmi_excluding_noise"),
                        secs(bt.get("wall_seconds")),
                        gb(bt.get("peak_rss_bytes")),
                    ],
                    [
                        f"KMeans oracle (k={km['k']})",
                        km["nmi"],
                        km["ari"],
                        km.get("ami"),
                        0.0,
                        km["k"],
                        km.get("largest_cluster_share"),
                        km["nmi"],
                        secs(km["fit_seconds"]),
                        "-",
                    ],
                ],
            ),
            f"Ours meets NMI >= BERTopic: {fmt(r['meets']['nmi_ge_bertopic'])}; "
            f"noise <= 20 %: {fmt(r['meets']['noise_le_20pct'])}. "
            "Walls: ours = whole `dbt build` (dbt start-up, tests, figure); BERTopic = its "
            "process (start-up, read, fit_transform).",
            "",
        ]
        for who, run in (("ours", ours), ("BERTopic", bt)):
            if run.get("error"):
                out += [f"**{who} failed**:", "", "```", run["error"][-3000:], "```", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Evaluate our defaults vs BERTopic vs KMeans on labelled corpora.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sets", default=DEFAULT_SETS, help=f"corpus[:size],... (default {DEFAULT_SETS})"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "eval", help="stem of .md/.json")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md from the existing .json"
    )
    args = parser.parse_args()
    if args.render:
        saved = read_json(args.output.with_suffix(".json"))
        args.output.with_suffix(".md").write_text(markdown(saved["sets"], saved["machine"]))
        return
    info = machine()
    results: list[dict[str, Any]] = []
    for corpus, size in parse_sets(args.sets):
        log(f"eval: {corpus} {size or 'all'}")
        results.append(evaluate(corpus, size))
        write_json(args.output.with_suffix(".json"), {"machine": info, "sets": results})
        args.output.with_suffix(".md").write_text(markdown(results, info))
    log(f"eval: wrote {args.output.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
