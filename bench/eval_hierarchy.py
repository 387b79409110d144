"""Measure topic hierarchies (layers of topics above our clusters) on labelled corpora.

For every set (``corpus:n``, the first ``n`` texts of a corpus of ``corpora.py``; embeddings
cached by ``embed.embeddings``):

- level 0 = our pipeline's clusters with its default settings, computed by the library
  estimators the dbt models call (``UMAPProjector`` = exact 15-NN graph + UMAP 2-D,
  random_state 42; ``DensityClusterer`` = DBSCAN with eps from the data, min_samples 5, the
  ``centroid`` noise policy), with the texts in corpus order;
- hierarchy candidates: ``text_clustering.hierarchy.TopicHierarchy`` with the settings of
  ``CANDIDATES`` (the first is the defaults), every layer scored;
- BERTopic with every default (``bench/run_bertopic.py`` in ``bench/.venv-bertopic``, given
  our vectors);
- Toponymy's layered clusterer ``ToponymyClusterer()`` with every default, fed the same 2-D
  projection (``clusterable_vectors``) and vectors (``embedding_vectors``), in its own venv
  ``bench/.venv-toponymy`` (``bench/requirements-toponymy.txt``); this script runs itself
  there with ``--toponymy-worker``; every layer scored;
- a KMeans oracle told k = the number of reference classes.

Scores as ``scores.py`` (noise counted as its own group). Writes ``bench/results/hierarchy.md``
and ``.json``, rewritten after every set; work files (level 0, the BERTopic input and
outputs) in ``bench/work/hierarchy/<n>-<hash of the texts>/``, reused on reruns.

    .venv/bin/python bench/eval_hierarchy.py --sets debian5,demo,debian_families:5000

(``make eval-hierarchy`` runs every default set: ~30-40 min on the 2-core reference machine
with the embeddings cached, most of it BERTopic.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
TOPONYMY_PYTHON = BENCH / ".venv-toponymy" / "bin" / "python"
TOPONYMY_PACKAGES = ("toponymy", "fast_hdbscan", "numba", "numpy", "scikit-learn", "torch")
DEFAULT_SETS = (
    "debian5,demo,debian_families:5000,debian:5000,debian_families:10000,debian:10000,"
    "debian_families:20000,debian:20000,fortunes:5000,wordnet:5000,wordnet:20000"
)
# Name -> TopicHierarchy keyword arguments; the first entry is the defaults.
CANDIDATES: dict[str, dict[str, Any]] = {
    "ward, ratio 2.5, separation (defaults)": {},
    "ward, ratio 2.5, nearest": {"headline": "nearest"},
    "ward, ratio 3": {"reduction": 3.0},
    "ward, ratio 4": {"reduction": 4.0},
    "average, ratio 2.5": {"linkage": "average"},
    "average, ratio 4": {"linkage": "average", "reduction": 4.0},
}
PARAMS = (
    "linkage",
    "reduction",
    "max_top_topics",
    "headline",
    "min_headline_topics",
    "max_headline_topics",
    "sample_size",
    "random_state",
)
EMBED_BLOCK = 5000  # texts embedded and cached per block: a larger sample reuses a smaller one
BERTOPIC_FACTOR = 1.3  # target: best layer ARI >= this x BERTopic's


def toponymy_worker(source: Path, output: Path) -> None:
    """In Toponymy's venv: ``ToponymyClusterer()`` (defaults) on ``points`` and ``vectors``
    of the npz ``source``; every layer's labels to JSON ``output``."""
    from importlib import metadata

    from toponymy import ToponymyClusterer

    data = np.load(source)
    start = time.perf_counter()
    clusterer = ToponymyClusterer().fit(
        clusterable_vectors=data["points"], embedding_vectors=data["vectors"]
    )
    seconds = time.perf_counter() - start
    layers = [np.asarray(layer.cluster_labels).tolist() for layer in clusterer.cluster_layers_]
    versions = {}
    for name in TOPONYMY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    result = {"layers": layers, "seconds": seconds, "versions": versions}
    output.write_text(json.dumps(result))


def level0(vectors: np.ndarray, random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Our default clustering: ``(points (n, 2), labels (n,))`` (module docstring); UMAP's
    ``random_state`` 42 is the pipeline's default."""
    from text_clustering import DensityClusterer, UMAPProjector

    points = UMAPProjector(random_state=random_state).fit_transform(vectors)
    return points, DensityClusterer().fit(points, vectors).labels_


def run_toponymy(npz: Path, run_dir: Path, name: str = "toponymy") -> dict[str, Any]:
    """Toponymy's layers on the set saved in ``npz`` (cached in ``run_dir/<name>.json``)."""
    from common import OFFLINE_ENV, log, run_monitored, tail

    output = run_dir / f"{name}.json"
    if output.exists():
        return json.loads(output.read_text())
    cmd = [str(TOPONYMY_PYTHON), str(Path(__file__).resolve()), "--toponymy-worker"]
    cmd += [str(npz), str(output)]
    env = {**OFFLINE_ENV, "NUMBA_CACHE_DIR": str(BENCH / ".venv-toponymy" / "numba-cache")}
    log(f"Toponymy on {npz}")
    measured = run_monitored(cmd, env=env, log_path=run_dir / f"{name}.log")
    if measured.returncode != 0 or not output.exists():
        return {"error": tail(measured.log_path)}
    return {**json.loads(output.read_text()), "wall_seconds": measured.wall_seconds}


def prepare(corpus: str, n: int | None) -> tuple[dict[str, Any], Path]:
    """Texts, labels, vectors and level 0 of one set (cached in ``bench/work``)."""
    from common import WORK, log
    from corpora import LOADERS
    from embed import content_hash, embeddings, with_embeddings

    table = LOADERS[corpus]()
    table = table.slice(0, n or table.num_rows)
    name = f"{corpus}-{table.num_rows}"
    texts = table["text"].to_pylist()
    # Keyed by the texts: corpora with the same texts (debian, debian_families) share level 0,
    # BERTopic and Toponymy, none of which sees the labels.
    run_dir = WORK / "hierarchy" / f"{table.num_rows}-{content_hash(texts)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    vectors = np.concatenate(
        [embeddings(texts[i : i + EMBED_BLOCK]) for i in range(0, len(texts), EMBED_BLOCK)]
    )
    npz = run_dir / "level0.npz"
    if not npz.exists():
        start = time.perf_counter()
        points, labels = level0(vectors)
        log(f"{name}: level 0 in {time.perf_counter() - start:.0f}s")
        np.savez(npz, points=points, labels=labels, vectors=vectors)
    source = run_dir / "input.parquet"
    if not source.exists():
        import pyarrow.parquet as pq

        pq.write_table(with_embeddings(table, vectors), source)
    data = dict(np.load(npz))
    data["reference"] = table["label"].to_pylist()
    data["name"] = name
    return data, run_dir


def layer_rows(reference: list[str], layers: list[np.ndarray]) -> list[dict[str, Any]]:
    """Scores of every layer (``layers[i]`` ``(n,)`` labels, -1 = noise)."""
    from scores import scores

    return [{"level": i, **scores(reference, layer.tolist())} for i, layer in enumerate(layers)]


def evaluate(corpus: str, n: int | None) -> dict[str, Any]:
    """Every method on one set; scores per layer."""
    from common import read_json, run_bertopic
    from scores import kmeans_oracle, scores

    from text_clustering.hierarchy import TopicHierarchy

    data, run_dir = prepare(corpus, n)
    reference, vectors, labels = data["reference"], data["vectors"], data["labels"]
    result: dict[str, Any] = {
        "set": data["name"],
        "corpus": corpus,
        "n_texts": len(reference),
        "n_classes": len(set(reference)),
        "candidates": {},
    }
    for name, params in CANDIDATES.items():
        start = time.perf_counter()
        model = TopicHierarchy(**params).fit(vectors, labels)
        seconds = time.perf_counter() - start
        result["candidates"][name] = {
            "params": {k: getattr(model, k) for k in PARAMS},
            "fit_seconds": seconds,
            "headline_level": model.headline_level_,
            "separation": [None if np.isnan(x) else float(x) for x in model.separation_],
            "layers": layer_rows(reference, list(model.transform(labels).T)),
        }
    cached = run_dir / "bertopic.json"
    bertopic = (
        read_json(cached) if cached.exists() else run_bertopic(run_dir / "input.parquet", run_dir)
    )
    if "topics" in bertopic:
        result["bertopic"] = {
            **scores(reference, bertopic["topics"]),
            "fit_seconds": bertopic["seconds"]["fit_transform"],
            "versions": bertopic.get("versions", {}),
        }
    else:
        result["bertopic"] = {"error": bertopic.get("error", "no output")}
    toponymy = run_toponymy(run_dir / "level0.npz", run_dir)
    if "layers" in toponymy:
        layers = [np.asarray(x) for x in toponymy["layers"]]
        result["toponymy"] = {
            "layers": layer_rows(reference, layers),
            "fit_seconds": toponymy["seconds"],
            "versions": toponymy["versions"],
        }
    else:
        result["toponymy"] = {"error": toponymy.get("error", "no output")}
    result["kmeans_oracle"] = kmeans_oracle(vectors, reference)
    result["summary"] = summary(result)
    return result


def _best(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return max(layers, key=lambda row: row["ari"])


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers the targets are about, for the default hierarchy."""
    default = next(iter(result["candidates"].values()))
    layers = default["layers"]
    headline = layers[default["headline_level"]]
    bertopic_ari = result["bertopic"].get("ari")
    toponymy_best = _best(result["toponymy"]["layers"]) if "layers" in result["toponymy"] else None
    best = _best(layers)
    out: dict[str, Any] = {
        "best_level": best["level"],
        "best_topics": best["n_clusters"],
        "best_ari": best["ari"],
        "headline_level": headline["level"],
        "headline_topics": headline["n_clusters"],
        "headline_ari": headline["ari"],
        "bertopic_ari": bertopic_ari,
        "bertopic_topics": result["bertopic"].get("n_clusters"),
        "toponymy_best_ari": toponymy_best["ari"] if toponymy_best else None,
        "toponymy_best_topics": toponymy_best["n_clusters"] if toponymy_best else None,
        "kmeans_ari": result["kmeans_oracle"]["ari"],
    }
    if bertopic_ari is not None:
        out["best_vs_bertopic_ok"] = best["ari"] >= BERTOPIC_FACTOR * bertopic_ari
    if toponymy_best:
        out["best_vs_toponymy_ok"] = best["ari"] >= toponymy_best["ari"]
    out["headline_size_ok"] = 3 <= headline["n_clusters"] <= 30
    if 5 <= result["n_classes"] <= 12 and bertopic_ari is not None:
        out["headline_vs_bertopic_ok"] = headline["ari"] >= bertopic_ari
    return out


def layout_seeds(corpus: str, seeds: list[int]) -> list[dict[str, Any]]:
    """Our defaults and Toponymy's best layer on level 0 made with other UMAP seeds (the
    layout both are given changes; BERTopic is not rerun). One row per seed."""
    from common import log

    from text_clustering.hierarchy import TopicHierarchy

    data, run_dir = prepare(corpus, None)
    reference, vectors = data["reference"], data["vectors"]
    rows = []
    for seed in seeds:
        npz = run_dir / f"level0-seed{seed}.npz"
        if not npz.exists():
            points, labels = level0(vectors, random_state=seed)
            np.savez(npz, points=points, labels=labels, vectors=vectors)
        labels = np.load(npz)["labels"]
        model = TopicHierarchy().fit(vectors, labels)
        ours = layer_rows(reference, list(model.transform(labels).T))
        toponymy = run_toponymy(npz, run_dir, name=f"toponymy-seed{seed}")
        theirs = layer_rows(reference, [np.asarray(x) for x in toponymy.get("layers", [])])
        row = {
            "set": data["name"],
            "seed": seed,
            "n_topics": model.n_topics_.tolist(),
            "best": _best(ours),
            "headline": ours[model.headline_level_],
            "toponymy_best": _best(theirs) if theirs else None,
        }
        log(f"{data['name']} UMAP seed {seed}: {row['best']['ari']:.3f} vs Toponymy")
        rows.append(row)
    return rows


def seeds_markdown(rows: list[dict[str, Any]]) -> str:
    """The layout-seed check as a table."""
    from report import fmt, table

    def cell(row: dict[str, Any] | None) -> str:
        return "-" if row is None else f"{row['n_clusters']}: {fmt(row['ari'])}"

    body = [
        [
            r["set"],
            r["seed"],
            ", ".join(map(str, r["n_topics"])),
            cell(r["best"]),
            cell(r["headline"]),
            cell(r["toponymy_best"]),
        ]
        for r in rows
    ]
    header = ["set", "UMAP seed", "topics per level", "ours best", "ours headline", "Toponymy best"]
    return "\n".join(
        [
            "## Other layouts (UMAP random_state; the pipeline's default is 42)",
            "",
            "Level 0 and Toponymy's input both come from the 2-D layout, so the margin over "
            "Toponymy is checked on layouts made with other seeds (topics: ARI).",
            "",
            table(header, body),
        ]
    )


def _cells(row: dict[str, Any], silhouette: float | None = None) -> list[Any]:
    return [
        row["n_clusters"],
        row["nmi"],
        row["ami"],
        row["ari"],
        row["noise_share"],
        row["largest_cluster_share"],
        silhouette,
    ]


def set_markdown(result: dict[str, Any]) -> str:
    """One set's section: the summary line and every layer of every method."""
    from corpora import DESCRIPTIONS
    from report import fmt, table

    s = result["summary"]
    lines = [
        f"## {result['set']}: {result['n_texts']} texts, {result['n_classes']} classes",
        "",
        DESCRIPTIONS.get(result["corpus"], ""),
        "",
        f"Defaults: best layer {s['best_level']} ({s['best_topics']} topics) ARI "
        f"{fmt(s['best_ari'])}; headline layer {s['headline_level']} ({s['headline_topics']} "
        f"topics) ARI {fmt(s['headline_ari'])}. BERTopic ARI {fmt(s['bertopic_ari'])} "
        f"({s['bertopic_topics']} topics); Toponymy best layer ARI {fmt(s['toponymy_best_ari'])} "
        f"({s['toponymy_best_topics']} topics); KMeans oracle ARI {fmt(s['kmeans_ari'])}.",
        "",
    ]
    checks = [
        ("best >= 1.3 x BERTopic", "best_vs_bertopic_ok"),
        ("best >= Toponymy best", "best_vs_toponymy_ok"),
        ("headline 3-30 topics", "headline_size_ok"),
        ("headline >= BERTopic (5-12 classes)", "headline_vs_bertopic_ok"),
    ]
    lines.append(
        "Targets: " + "; ".join(f"{text}: {fmt(s[key])}" for text, key in checks if key in s)
    )
    lines.append("")
    rows: list[list[Any]] = []
    for name, candidate in result["candidates"].items():
        for row in candidate["layers"]:
            mark = " (headline)" if row["level"] == candidate["headline_level"] else ""
            silhouette = candidate["separation"][row["level"]]
            rows.append([f"ours: {name}", f"{row['level']}{mark}", *_cells(row, silhouette)])
    for row in result["toponymy"].get("layers", []):
        rows.append(["Toponymy (defaults)", row["level"], *_cells(row)])
    if "ari" in result["bertopic"]:
        rows.append(["BERTopic (defaults)", "-", *_cells(result["bertopic"])])
    rows.append([f"KMeans oracle (k={result['n_classes']})", "-", *_cells(result["kmeans_oracle"])])
    header = [
        "method",
        "layer",
        "topics",
        "NMI",
        "AMI",
        "ARI",
        "noise share",
        "largest topic",
        "silhouette",
    ]
    default = next(iter(result["candidates"].values()))
    seconds = (
        f"Fit seconds: ours (defaults, level 0 given) {default['fit_seconds']:.1f}; Toponymy "
        f"{result['toponymy'].get('fit_seconds', float('nan')):.1f}; BERTopic (whole "
        f"fit_transform) {result['bertopic'].get('fit_seconds', float('nan')):.1f}."
    )
    return "\n".join([*lines, seconds, ""]) + "\n" + table(header, rows) + "\n"


METHOD = (
    "**Chosen (the defaults of `TopicHierarchy`)**: Ward linkage of the level-0 clusters' "
    "mean unit vectors, weighted by their sizes (exact merges from means and counts); each "
    "level has the previous level's topic count divided by 2.5, until 12 or fewer; the headline "
    "is the best-separated level (highest mean silhouette) among levels with 3-30 topics. "
    "Ward beat average linkage because average linkage makes catch-all topics at coarse levels "
    "(`average, ratio 4` on debian_families 10k: 5 topics, the largest holding 85 % of the "
    "texts, ARI 0.017; on fortunes 8 topics, the largest 64 %); ratio 2.5 beat 3 "
    "and 4 because more levels leave a level near the true granularity (ratio 3 missed "
    "debian5's 5 sections: 11 topics, 0.588 < Toponymy's 0.597; ratio 4 jumped from 32 to 8 "
    "topics on the demo: best 0.430 < Toponymy's 0.462); the silhouette rule beat 'nearest to "
    "~10 topics' on the 15-class demo (20 topics, 0.493 vs 8 topics, 0.282)."
)
DROPPED = (
    "Dropped after measuring (commit 3f34322, same level 0): cutting each layer at the largest "
    "jump of the Ward merge heights within a factor 2 of the ratio-4 count (`ward, gap 4`). It "
    "found debian5's 5 sections (5 topics, ARI 0.885) but its top layer fell to 2 topics on "
    "the demo (ARI 0.031; best layer 16 topics, 0.471) and to 6 topics on debian_families "
    "(0.049; best 33 topics, 0.099): merge-height jumps are too weak a signal on real corpora."
)


def candidates_markdown(sets: list[dict[str, Any]]) -> str:
    """Every candidate on every set: best layer and headline layer (topics: ARI)."""
    from report import table

    rows = []
    for name in sets[0]["candidates"]:
        row: list[Any] = [name]
        for r in sets:
            c = r["candidates"][name]
            best = _best(c["layers"])
            head = c["layers"][c["headline_level"]]
            row.append(
                f"{best['n_clusters']}: {best['ari']:.3f} / {head['n_clusters']}: {head['ari']:.3f}"
            )
        rows.append(row)
    header = ["candidate", *(f"{r['set']} ({r['n_classes']} classes)" for r in sets)]
    return table(header, rows)


def markdown(report: dict[str, Any]) -> str:
    """The whole report."""
    from report import fmt, machine_markdown, table

    sets = report["sets"]
    bertopic = next(
        (r["bertopic"].get("versions") for r in sets if "versions" in r["bertopic"]), None
    )
    toponymy = next((r["toponymy"]["versions"] for r in sets if "versions" in r["toponymy"]), None)
    rows = []
    for r in sets:
        s = r["summary"]
        rows.append(
            [
                r["set"],
                r["n_classes"],
                f"{s['best_topics']}: {fmt(s['best_ari'])}",
                f"{s['headline_topics']}: {fmt(s['headline_ari'])}",
                f"{s['bertopic_topics']}: {fmt(s['bertopic_ari'])}",
                f"{s['toponymy_best_topics']}: {fmt(s['toponymy_best_ari'])}",
                fmt(s["kmeans_ari"]),
            ]
        )
    header = [
        "set",
        "classes",
        "ours best layer (topics: ARI)",
        "ours headline",
        "BERTopic",
        "Toponymy best layer",
        "KMeans oracle ARI",
    ]
    machine = machine_markdown(report["machine"], bertopic)
    if toponymy:
        machine += (
            "- Toponymy (`bench/.venv-toponymy`): "
            + ", ".join(f"{k} {v}" for k, v in toponymy.items())
            + "\n"
        )
    return "\n".join(
        [
            "# Topic hierarchy: layers above our clusters vs BERTopic and Toponymy",
            "",
            "Made by `bench/eval_hierarchy.py` (see its docstring for what runs). Level 0 = our "
            "default clusters; ours = `TopicHierarchy` candidates over them (the first is the "
            "defaults); Toponymy = `ToponymyClusterer()` defaults on the same 2-D projection and "
            "vectors; BERTopic = `BERTopic()` defaults on the same vectors. NMI, AMI and ARI "
            "count noise as its own group; *largest topic* is the share of all texts in the "
            "biggest topic (a catch-all shows there); *silhouette* is the mean silhouette the "
            "headline rule compares (cosine, embedding space, 3,000 sampled texts; only levels "
            "with 3-30 topics).",
            "",
            METHOD,
            "",
            machine,
            "## Summary (defaults)",
            "",
            table(header, rows),
            "## Candidates: best layer / headline layer (topics: ARI)",
            "",
            candidates_markdown(sets),
            DROPPED,
            "",
            *([seeds_markdown(report["layout_seeds"])] if report.get("layout_seeds") else []),
            *[set_markdown(r) for r in sets],
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Measure topic hierarchies vs BERTopic and Toponymy; markdown + JSON out.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sets", default=DEFAULT_SETS, help="corpus[:n],... (corpora.py)")
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "hierarchy")
    parser.add_argument(
        "--seed-sets", default="debian5,demo", help="corpora checked on other UMAP layouts"
    )
    parser.add_argument("--seeds", default="0,1", help="UMAP random_states of that check")
    parser.add_argument("--toponymy-worker", nargs=2, type=Path, metavar=("NPZ", "JSON"))
    args = parser.parse_args()
    if args.toponymy_worker:
        toponymy_worker(*args.toponymy_worker)
        return
    sys.path.insert(0, str(BENCH))
    from common import log, write_report
    from report import machine

    results: list[dict[str, Any]] = []
    info = machine()
    for item in filter(None, (s.strip() for s in args.sets.split(","))):
        corpus, _, size = item.partition(":")
        results.append(evaluate(corpus, int(size) if size else None))
        log(f"{results[-1]['set']}: {results[-1]['summary']}")
        report = {"machine": info, "candidates": CANDIDATES, "sets": results}
        write_report(args.output, report, markdown)
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    report["layout_seeds"] = [
        row
        for corpus in filter(None, (c.strip() for c in args.seed_sets.split(",")))
        for row in layout_seeds(corpus, seeds)
    ]
    write_report(args.output, report, markdown)


if __name__ == "__main__":
    main()
