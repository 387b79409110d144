"""Evaluate our pipeline's DEFAULT settings on labelled corpora, every layer of its topic
hierarchy included: ``make eval``.

For every evaluation set (a corpus and a sample size, see ``--sets``) the same input file
(texts, reference labels and the same precomputed embeddings, see embed.py) goes to:

- ours: ``dbt build`` with only the input vars (text/id/label/embedding columns), no tuning;
  every level of ``fct_text_topics`` (level 0 = the clusters) is scored, and the headline
  level is the one ``dim_topics.is_headline_level`` marks;
- BERTopic with every default (``fit_transform(docs, embeddings=...)``, its own venv);
- Toponymy's ``ToponymyClusterer()`` with every default (``run_toponymy.py``, its own venv),
  given our build's 2-D projection (``fct_text_clusters.projection``) and the same vectors;
  every layer scored;
- a KMeans oracle on the embeddings with k = the number of reference classes (it is told k).

Scores (NMI, AMI, ARI with noise counted as its own group; NMI without the noise; noise share;
topics) go to ``bench/results/eval.md`` and ``eval.json``, rewritten after every set, with the
targets per set (``targets()``); level 0 is compared with the committed report
(``git show HEAD:bench/results/eval.json``, read once at the start). Each set starts from a
fresh database (cold build); the work files stay in ``bench/work/eval``. Sets with the same
texts (``debian:20000`` and ``debian_families:20000``: only the labels differ) share one run
of each method, scored against each set's labels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from common import (
    RESULTS,
    ROOT,
    WORK,
    log,
    read_json,
    run_bertopic,
    run_toponymy,
    write_json,
    write_report,
)
from corpora import DESCRIPTIONS
from embed import input_file
from report import fmt, gb, machine, machine_markdown, secs, table
from run_ours import read_database, run_pipeline
from scores import kmeans_oracle, scores

DEFAULT_SETS = (
    "debian5,debian:1000,debian:5000,debian_families:5000,debian:20000,"
    "debian_families:20000,fortunes,wordnet:20000"
)
MAX_NOISE = 0.20
BERTOPIC_FACTOR = 1.3  # target: our best layer's ARI >= this x BERTopic's
HEADLINE_TOPICS = (3, 30)  # target: the headline layer's topics, on sets of ...
HEADLINE_TEXTS = (2_000, 100_000)  # ... this many texts
COARSE_CLASSES = (5, 12)  # sets with this many classes: headline ARI >= BERTopic's


def parse_sets(text: str) -> list[tuple[str, int | None]]:
    """``debian:1000,fortunes`` -> ``[("debian", 1000), ("fortunes", None)]``."""
    sets: list[tuple[str, int | None]] = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        corpus, _, size = item.partition(":")
        sets.append((corpus, int(size) if size else None))
    return sets


def committed_baseline(ref: str = "HEAD") -> dict[str, Any]:
    """Level-0 scores of ours per ``corpus-n`` in the committed ``bench/results/eval.json``."""
    path = "bench/results/eval.json"
    shown = subprocess.run(
        ["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True
    )
    commit = subprocess.run(
        ["git", "log", "-1", "--format=%h", ref, "--", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if shown.returncode != 0:
        return {"commit": None, "sets": {}}
    sets = {}
    for r in json.loads(shown.stdout)["sets"]:
        level0 = (r.get("ours") or {}).get("scores")
        if level0:
            sets[f"{r['corpus']}-{r['n_texts']}"] = {
                k: level0.get(k) for k in ("nmi", "ami", "ari", "n_clusters", "noise_share")
            }
    return {"commit": commit or None, "made": json.loads(shown.stdout)["machine"], "sets": sets}


def texts_key(source: Path) -> str:
    """Hash of a set's ids and texts (not its labels): sets with the same key share runs."""
    data = pq.read_table(source, columns=["id", "text"])
    digest = hashlib.sha256()
    for i, t in zip(data["id"].to_pylist(), data["text"].to_pylist(), strict=True):
        digest.update(f"{i}\0{t}\0".encode())
    return digest.hexdigest()[:16]


def projection(database: Path, ids: list[str]) -> np.ndarray:
    """Our build's 2-D projection of the texts ``ids`` (in that order), from the marts."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.sql("select text_id, projection from fct_text_clusters").fetchall()
    finally:
        con.close()
    where = {text_id: point for text_id, point in rows}
    return np.asarray([where[str(i)] for i in ids], dtype=np.float32)


def run_methods(source: Path, run_dir: Path, n: int) -> dict[str, Any]:
    """Ours, BERTopic and Toponymy on one input file (label-free: shared by sets with the
    same texts); raw outputs, not yet scored except ours against ``source``'s labels."""
    shutil.rmtree(run_dir, ignore_errors=True)
    ours = run_pipeline(source, run_dir, name="ours")
    bertopic = run_bertopic(source, run_dir)
    toponymy: dict[str, Any] = {"error": "no projection: our build failed"}
    database = run_dir / "pipeline.duckdb"
    if ours.get("returncode") == 0 and database.exists():
        data = pq.read_table(source, columns=["id", "embedding"])
        vectors = np.asarray(data["embedding"].combine_chunks().flatten(), dtype=np.float32)
        npz = run_dir / "toponymy-input.npz"
        np.savez(
            npz,
            points=projection(database, data["id"].to_pylist()),
            vectors=vectors.reshape(n, -1),
        )
        toponymy = run_toponymy(npz, run_dir)
        npz.unlink()
    return {"run_dir": str(run_dir), "ours": ours, "bertopic": bertopic, "toponymy": toponymy}


def best(layers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The layer with the highest ARI (the first of equals)."""
    return max(layers, key=lambda row: row["ari"]) if layers else None


def evaluate(
    corpus: str, size: int | None, runs: dict[str, dict[str, Any]], baseline: dict[str, Any]
) -> dict[str, Any]:
    """Ours (every level), BERTopic, Toponymy (every layer) and the KMeans oracle on one set."""
    source = input_file(corpus, size)
    data = pq.read_table(source, columns=["label", "embedding"])
    reference = data["label"].to_pylist()
    n = len(reference)
    name = f"{corpus}-{n}"
    key = texts_key(source)
    result: dict[str, Any] = {
        "corpus": corpus,
        "n_texts": n,
        "n_classes": len(set(reference)),
        "input": str(source),
    }
    if key in runs:
        shared = runs[key]
        result["shared_runs_with"] = shared["set"]
        log(f"eval: {name} has the texts of {shared['set']}: its runs, scored on {name}'s labels")
        # rpt_cluster_metrics scored the build's own label column: not this set's labels.
        drop = ("scores", "levels", "rpt_cluster_metrics")
        ours = {k: v for k, v in shared["ours"].items() if k not in drop}
        database = Path(shared["run_dir"]) / "pipeline.duckdb"
        if database.exists():
            ours.update(read_database(database, source))
            ours.pop("rpt_cluster_metrics", None)
    else:
        shared = {"set": name, **run_methods(source, WORK / "eval" / name, n)}
        runs[key] = shared
        ours = shared["ours"]
    result["ours"] = ours
    bertopic = {k: v for k, v in shared["bertopic"].items() if k != "topics"}
    if "topics" in shared["bertopic"]:
        bertopic["scores"] = scores(reference, shared["bertopic"]["topics"])
    result["bertopic"] = bertopic
    toponymy = {k: v for k, v in shared["toponymy"].items() if k != "layers"}
    if "layers" in shared["toponymy"]:
        toponymy["levels"] = [
            {"level": i, **scores(reference, layer)}
            for i, layer in enumerate(shared["toponymy"]["layers"])
        ]
    result["toponymy"] = toponymy
    vectors = np.asarray(data["embedding"].combine_chunks().flatten(), dtype=np.float32)
    result["kmeans"] = kmeans_oracle(vectors.reshape(n, -1), reference)
    result["committed"] = baseline["sets"].get(name)
    result["summary"] = summary(result)
    result["targets"] = targets(result)
    return result


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """The numbers the targets are about."""
    levels = r["ours"].get("levels") or []
    headlines = r["ours"].get("headline_levels") or []
    headline = next((row for row in levels if row["level"] in headlines), None)
    ours_best = best(levels)
    topo_best = best(r["toponymy"].get("levels") or [])
    b = r["bertopic"].get("scores") or {}
    level0 = r["ours"].get("scores") or {}

    def pick(row: dict[str, Any] | None, *keys: str) -> dict[str, Any]:
        return {k: (row or {}).get(k) for k in keys}

    return {
        "level0": pick(level0, "nmi", "ami", "ari", "n_clusters", "noise_share"),
        "n_levels": len(levels),
        "best": {**pick(ours_best, "level", "n_clusters", "ari", "nmi", "ami")},
        "headline": {**pick(headline, "level", "n_clusters", "ari", "nmi", "ami")},
        "bertopic": pick(b, "n_clusters", "ari", "nmi", "ami", "noise_share"),
        "toponymy_best": pick(topo_best, "level", "n_clusters", "ari", "nmi", "ami", "noise_share"),
        "kmeans_ari": r["kmeans"]["ari"],
    }


def targets(r: dict[str, Any]) -> dict[str, bool | None]:
    """Each target: True / False, or None where it cannot be judged (a run failed, no
    committed number) or does not apply (set size, number of classes)."""
    s = r["summary"]
    level0, committed = s["level0"], r.get("committed")
    best_ari, head_ari = s["best"]["ari"], s["headline"]["ari"]
    bt_ari, topo_ari = s["bertopic"]["ari"], s["toponymy_best"]["ari"]
    both = lambda a, b: a is not None and b is not None  # noqa: E731
    out: dict[str, bool | None] = {
        "level0_nmi_ge_committed": (level0["nmi"] >= committed["nmi"])
        if both(level0["nmi"], committed)
        else None,
        "best_ari_ge_1_3x_bertopic": (best_ari >= BERTOPIC_FACTOR * bt_ari)
        if both(best_ari, bt_ari)
        else None,
        "best_ari_ge_toponymy_best": (best_ari >= topo_ari) if both(best_ari, topo_ari) else None,
        "headline_3_30_topics": None,
        "headline_ari_ge_bertopic": None,
        "noise_le_20pct": (level0["noise_share"] <= MAX_NOISE)
        if level0["noise_share"] is not None
        else None,
    }
    low, high = HEADLINE_TEXTS
    if low <= r["n_texts"] <= high and s["headline"]["n_clusters"] is not None:
        out["headline_3_30_topics"] = (
            HEADLINE_TOPICS[0] <= s["headline"]["n_clusters"] <= HEADLINE_TOPICS[1]
        )
    if COARSE_CLASSES[0] <= r["n_classes"] <= COARSE_CLASSES[1] and both(head_ari, bt_ari):
        out["headline_ari_ge_bertopic"] = head_ari >= bt_ari
    return out


TARGET_TEXT = {
    "level0_nmi_ge_committed": "level-0 NMI >= committed eval",
    "best_ari_ge_1_3x_bertopic": "best layer ARI >= 1.3 x BERTopic",
    "best_ari_ge_toponymy_best": "best layer ARI >= Toponymy's best layer",
    "headline_3_30_topics": "headline 3-30 topics (2k-100k texts)",
    "headline_ari_ge_bertopic": "headline ARI >= BERTopic (5-12 classes)",
    "noise_le_20pct": "noise <= 20 %",
}


def _topics_ari(part: dict[str, Any]) -> str:
    if part.get("ari") is None:
        return "-"
    level = f"L{part['level']} " if part.get("level") is not None else ""
    return f"{level}{part['n_clusters']}: {part['ari']:.3f}"


def _met(t: dict[str, bool | None]) -> str:
    judged = [v for v in t.values() if v is not None]
    missed = [TARGET_TEXT[k] for k, v in t.items() if v is False]
    return f"{sum(judged)}/{len(judged)}" + (f" (missed: {'; '.join(missed)})" if missed else "")


def summary_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        s, c = r["summary"], r.get("committed") or {}
        rows.append(
            [
                f"{r['corpus']}-{r['n_texts']}",
                r["n_classes"],
                f"{fmt(s['level0']['nmi'])} ({fmt(c.get('nmi'))})",
                f"{fmt(s['level0']['ami'])} ({fmt(c.get('ami'))})",
                _topics_ari(s["best"]),
                _topics_ari(s["headline"]),
                _topics_ari(s["bertopic"]),
                _topics_ari(s["toponymy_best"]),
                fmt(s["kmeans_ari"]),
                fmt(s["level0"]["noise_share"]),
                _met(r["targets"]),
            ]
        )
    header = [
        "set",
        "classes",
        "level-0 NMI (committed)",
        "level-0 AMI (committed)",
        "ours best layer",
        "ours headline",
        "BERTopic",
        "Toponymy best layer",
        "KMeans oracle ARI",
        "ours noise",
        "targets met",
    ]
    return table(header, rows)


def _row(method: str, layer: Any, sc: dict[str, Any], wall: Any = None, rss: Any = None) -> list:
    return [
        method,
        layer,
        sc.get("n_clusters"),
        sc.get("nmi"),
        sc.get("ami"),
        sc.get("ari"),
        sc.get("noise_share"),
        sc.get("largest_cluster_share"),
        sc.get("nmi_excluding_noise"),
        secs(wall) if wall is not None else "",
        gb(rss) if rss is not None else "",
    ]


def set_markdown(r: dict[str, Any]) -> list[str]:
    """One set's section: summary, targets, every layer of every method."""
    ours, bt, topo, km = r["ours"], r["bertopic"], r["toponymy"], r["kmeans"]
    s, c = r["summary"], r.get("committed")
    rows: list[list[Any]] = []
    headlines = ours.get("headline_levels") or []
    for i, row in enumerate(ours.get("levels") or []):
        mark = " (headline)" if row["level"] in headlines else ""
        first = i == 0
        rows.append(
            _row(
                "ours (defaults)" if first else "",
                f"{row['level']}{mark}",
                row,
                ours.get("wall_seconds") if first else None,
                ours.get("peak_rss_bytes") if first else None,
            )
        )
    if not ours.get("levels") and ours.get("scores"):
        rows.append(_row("ours (defaults)", "clusters", ours["scores"], ours.get("wall_seconds")))
    if c:
        rows.append(_row("ours, committed eval", "0", c))
    rows.append(
        _row(
            "BERTopic (defaults)",
            "-",
            bt.get("scores") or {},
            bt.get("wall_seconds"),
            bt.get("peak_rss_bytes"),
        )
    )
    for i, row in enumerate(topo.get("levels") or []):
        first = i == 0
        rows.append(
            _row(
                "Toponymy (defaults)" if first else "",
                row["level"],
                row,
                topo.get("wall_seconds") if first else None,
                topo.get("peak_rss_bytes") if first else None,
            )
        )
    rows.append(_row(f"KMeans oracle (k={km['k']})", "-", km, km["fit_seconds"], None))
    shared = r.get("shared_runs_with")
    out = [
        f"## {r['corpus']}, {r['n_texts']} texts, {r['n_classes']} classes",
        "",
        DESCRIPTIONS.get(r["corpus"], "") + ".",
        "",
    ]
    if shared:
        out += [
            f"Same texts as `{shared}`: the same runs of ours, BERTopic and Toponymy (walls "
            "are theirs), scored against this set's labels.",
            "",
        ]
    out += [
        f"Ours: best layer {_topics_ari(s['best'])} (topics: ARI), headline layer "
        f"{_topics_ari(s['headline'])}, {s['n_levels']} levels; BERTopic "
        f"{_topics_ari(s['bertopic'])}; Toponymy best layer {_topics_ari(s['toponymy_best'])}; "
        f"KMeans oracle ARI {fmt(s['kmeans_ari'])}.",
        "",
        "Targets: "
        + "; ".join(
            f"{TARGET_TEXT[k]}: {fmt(v) if v is not None else 'n/a'}"
            for k, v in r["targets"].items()
        )
        + ".",
        "",
        table(
            [
                "method",
                "layer",
                "topics",
                "NMI",
                "AMI",
                "ARI",
                "noise share",
                "largest topic",
                "NMI excl. noise",
                "wall",
                "peak RSS",
            ],
            rows,
        ),
    ]
    for who, run in (("ours", ours), ("BERTopic", bt), ("Toponymy", topo)):
        if run.get("error"):
            out += [f"**{who} failed**:", "", "```", str(run["error"])[-3000:], "```", ""]
    return out


def markdown(report: dict[str, Any]) -> str:
    """eval.md: the machine, a summary table, a section per evaluation set."""
    results, info, baseline = report["sets"], report["machine"], report["baseline"]
    bt_versions = next(
        (r["bertopic"].get("versions") for r in results if r["bertopic"].get("versions")), None
    )
    topo_versions = next(
        (r["toponymy"].get("versions") for r in results if r["toponymy"].get("versions")), None
    )
    machine_md = machine_markdown(info, bt_versions)
    if topo_versions:
        machine_md += (
            "- Toponymy (`bench/.venv-toponymy`): "
            + ", ".join(f"{k} {v}" for k, v in topo_versions.items())
            + "\n"
        )
    committed = (
        f"`bench/results/eval.json` as of commit {baseline['commit']}, made with repo "
        f"{baseline.get('made', {}).get('repo_commit', '?')}"
        if baseline.get("commit")
        else "no committed report"
    )
    out = [
        "# Evaluation: our defaults (every layer) vs BERTopic vs Toponymy vs a KMeans oracle",
        "",
        f"Made by `make eval` on {report['finished']} (started {report['started']}; "
        f"{report['wall_minutes']:.0f} min for the sets below). Every method gets the same "
        "texts and the same all-MiniLM-L6-v2 embeddings (computed once with our library's "
        "embedder). Ours runs with default settings (only the input vars) and is read from "
        "the marts: every level of `fct_text_topics` (level 0 = the clusters), the headline "
        "level being `dim_topics.is_headline_level`. BERTopic is "
        "`BERTopic().fit_transform(docs, embeddings=...)` with all defaults (no embedding "
        "model loaded, nothing downloaded); Toponymy is `ToponymyClusterer().fit("
        "clusterable_vectors=<our 2-D projection>, embedding_vectors=<the vectors>)` with all "
        "defaults (clustering only, no LLM), every layer scored; KMeans is told k = the number "
        "of reference classes (`random_state=42, n_init=10`), an oracle, not a competitor.",
        "",
        "NMI, ARI and AMI count noise (-1) as one more group (a noise text is noise at every "
        "level of ours); *NMI excl. noise* scores only the texts a method put in a topic; "
        "*largest topic* is the share of all texts in the biggest one (a catch-all shows "
        "there). AMI is NMI corrected for chance (NMI rises with the number of groups even for "
        "random ones; AMI does not). *Best layer* = the layer with the highest ARI (ours: any "
        "level, 0 included; Toponymy: any of its layers).",
        "",
        "Targets for ours, per set: level-0 NMI not below the committed eval ("
        + committed
        + "); best layer ARI >= 1.3 x BERTopic's and >= Toponymy's best layer; headline layer "
        "3-30 topics on sets of 2k-100k texts; on sets with 5-12 classes headline ARI >= "
        "BERTopic's; noise <= 20 %. *n/a*: the target does not apply to the set (or there is "
        "no committed number for it).",
        "",
        machine_md,
        "## Summary",
        "",
        "Cells `L<level> <topics>: <ARI>`; committed level-0 numbers in brackets.",
        "",
        summary_table(results),
    ]
    if report.get("note"):
        out += [report["note"], ""]
    for r in results:
        out += set_markdown(r)
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Evaluate our defaults (every hierarchy level) vs BERTopic, Toponymy and "
        "KMeans on labelled corpora.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sets", default=DEFAULT_SETS, help=f"corpus[:size],... (default {DEFAULT_SETS})"
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "eval", help="stem of .md/.json")
    parser.add_argument(
        "--baseline",
        default="HEAD",
        help="git revision whose bench/results/eval.json is the "
        "committed eval level 0 is compared with (default HEAD)",
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md from the existing .json"
    )
    parser.add_argument(
        "--note",
        help="with --render: a paragraph (markdown) to keep in the .json and show "
        "under the summary, e.g. what a later check found about a missed target",
    )
    args = parser.parse_args()
    if args.render:
        saved = read_json(args.output.with_suffix(".json"))
        if args.note is not None:
            saved["note"] = args.note
            write_json(args.output.with_suffix(".json"), saved)
        args.output.with_suffix(".md").write_text(markdown(saved))
        return
    baseline = committed_baseline(args.baseline)
    start = time.time()
    report: dict[str, Any] = {
        "machine": machine(),
        "baseline": baseline,
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start)),
        "sets": [],
    }
    runs: dict[str, dict[str, Any]] = {}
    for corpus, size in parse_sets(args.sets):
        log(f"eval: {corpus} {size or 'all'}")
        report["sets"].append(evaluate(corpus, size, runs, baseline))
        report["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        report["wall_minutes"] = (time.time() - start) / 60
        write_report(args.output, report, markdown)
        log(f"eval: {report['sets'][-1]['corpus']}: {report['sets'][-1]['targets']}")
    log(f"eval: wrote {args.output.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
