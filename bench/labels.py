"""Compare variants of the offline keyword labels by label->text retrieval (labels.md).

For each corpus (``--corpora``: ``demo`` is ``data/debian_packages.parquet``; others are
corpora.py's, ``name:n`` for the first n texts) the texts are embedded once (embed.py's
cache), projected, clustered and layered into topics as the pipeline does with its
default vars (UMAPProjector, DensityClusterer with ClusterSettings(), TopicHierarchy), all in
this process. Then, per variant of the keyword labeller, every cluster and topic gets its
first keyword label (terms counted once per cluster and summed up the tree, as
int_topic_keywords does), the labels are embedded with the same model, and each label's ROC
AUC of retrieving its own texts against the others (text_clustering.metrics.
label_retrieval_auc, what rpt_label_quality reports) is averaged per level, unweighted and
weighted by size. Deterministic: a rerun gives the same numbers.

Variants (keyword options of text_clustering.keywords):

- ``baseline``: words only, c-TF-IDF order, plural twins skipped (the labeller before #14);
- ``near_duplicates``: + distinct_terms (prefix twins, words already in a phrase);
- ``distinctive``: + words in too few of the cluster's texts or with a lift below
  MIN_LIFT go after the distinctive ones;
- ``phrases``: + two-word phrases, kept when in 2 of the cluster's texts and at least as
  concentrated in it as their words (no word filter);
- ``phrases_any``: phrases kept whatever their words' concentration, + the filter;
- ``default``: phrases + distinctive words + near duplicates (the pipeline's default);
- ``loose`` / ``strict``: as default with a lift of 1.2 and 2 % / 3 and 10 % of the
  cluster's texts.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from common import RESULTS, ROOT, log, write_json
from corpora import LOADERS
from embed import embeddings
from report import fmt, machine, machine_markdown, table

from text_clustering.clustering import NOISE
from text_clustering.embed import embed_texts
from text_clustering.hierarchy import TopicHierarchy
from text_clustering.keywords import _stem, keyword_labels, term_counts, top_terms
from text_clustering.metrics import label_retrieval_auc, layer_means
from text_clustering.projection import UMAPProjector
from text_clustering.steps.clustering import ClusterSettings

OFF = {"min_texts": 0, "min_text_share": 0.0, "min_lift": 0.0}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"ngram_range": (1, 1), "filters": OFF, "dedupe": "stem"},
    "near_duplicates": {"ngram_range": (1, 1), "filters": OFF, "dedupe": "distinct"},
    "distinctive": {"ngram_range": (1, 1), "filters": {}, "dedupe": "distinct"},
    "phrases": {"ngram_range": (1, 2), "filters": OFF, "dedupe": "distinct"},
    "phrases_any": {
        "ngram_range": (1, 2),
        "filters": {"phrases_over_words": False},
        "dedupe": "distinct",
    },
    "default": {"ngram_range": (1, 2), "filters": {}, "dedupe": "distinct"},
    "loose": {
        "ngram_range": (1, 2),
        "filters": {"min_lift": 1.2, "min_text_share": 0.02},
        "dedupe": "distinct",
    },
    "strict": {
        "ngram_range": (1, 2),
        "filters": {"min_lift": 3.0, "min_text_share": 0.1},
        "dedupe": "distinct",
    },
}
DEFAULT_CORPORA = "demo,fortunes:5000,debian:5000"


def load(corpus: str) -> tuple[list[str], np.ndarray]:
    """The texts of a corpus and their cached embeddings."""
    if corpus == "demo":
        texts = pq.read_table(ROOT / "data" / "debian_packages.parquet")["text"].to_pylist()
    else:
        name, _, size = corpus.partition(":")
        texts = LOADERS[name]()["text"].to_pylist()
        texts = texts[: int(size)] if size else texts
    return texts, embeddings(texts)


def fit(vectors: np.ndarray) -> np.ndarray:
    """Every text's topic at every level ``(n, n_levels)``, column 0 its cluster."""
    points = UMAPProjector(random_state=42).fit_transform(vectors)
    clusters = ClusterSettings().clusterer().fit(points, lambda rows: vectors[rows]).labels_
    kept = clusters != NOISE
    hierarchy = TopicHierarchy(random_state=42).fit(vectors[kept], clusters[kept])
    return hierarchy.transform(clusters)


def stem_labels(terms: list[str]) -> str | None:
    """The labeller before #14: the first three terms of distinct stems."""
    seen: set[str] = set()
    picked = []
    for term in terms:
        if _stem(term) not in seen:
            seen.add(_stem(term))
            picked.append(term)
    return ", ".join(picked[:3]) or None


def variant_labels(
    texts: list[str], topics: np.ndarray, variant: dict[str, Any]
) -> list[dict[int, str | None]]:
    """Per level, topic -> its first keyword label, from one term count per cluster."""
    clusters = topics[:, 0].tolist()
    ids, counts, terms = term_counts(texts, clusters, ngram_range=variant["ngram_range"])
    out = []
    for level in range(topics.shape[1]):
        topic_of = dict(zip(clusters, topics[:, level].tolist(), strict=True))
        names = sorted(set(topic_of.values()))
        member = np.zeros((len(names), len(ids)))
        for j, c in enumerate(ids):
            member[names.index(topic_of[c]), j] = 1.0
        found = top_terms(member @ counts, terms, names, **variant["filters"])
        if variant["dedupe"] == "stem":
            out.append({t: stem_labels(found[t]) for t in names})
        else:
            out.append({t: (keyword_labels(found[t]) or [None])[0] for t in names})
    return out


def score(
    vectors: np.ndarray,
    topics: np.ndarray,
    labels: list[dict[int, str | None]],
    cache: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    """Per level: topics, mean and size-weighted mean AUC of the labels."""
    wanted = sorted({x for level in labels for x in level.values() if x and x not in cache})
    if wanted:
        cache.update(zip(wanted, embed_texts(wanted), strict=True))
    rows = []
    for level, named in enumerate(labels):
        ids = [t for t, x in sorted(named.items()) if t != NOISE and x]
        auc = label_retrieval_auc(
            vectors, topics[:, level], np.array([cache[named[t]] for t in ids]), np.array(ids)
        )
        sizes = np.array([(topics[:, level] == t).sum() for t in ids])
        mean, weighted = layer_means(auc, sizes)
        rows.append({"level": level, "topics": len(ids), "mean": mean, "weighted": weighted})
    return rows


def evaluate(corpus: str, variants: list[str]) -> dict[str, Any]:
    texts, vectors = load(corpus)
    start = time.perf_counter()
    topics = fit(vectors)
    log(f"{corpus}: {len(texts)} texts, levels of {[len(set(c)) for c in topics.T]} topics")
    cache: dict[str, np.ndarray] = {}
    result: dict[str, Any] = {"corpus": corpus, "n_texts": len(texts), "variants": {}}
    for name in variants:
        began = time.perf_counter()
        labels = variant_labels(texts, topics, VARIANTS[name])
        seconds = time.perf_counter() - began
        levels = score(vectors, topics, labels, cache)
        examples = {str(t): labels[0][t] for t in sorted(labels[0]) if t != NOISE}
        result["variants"][name] = {
            "levels": levels,
            "keyword_seconds": seconds,
            "examples": examples,
        }
        log(f"{corpus} {name}: " + ", ".join(f"{r['mean']:.3f}" for r in levels))
    result["seconds"] = time.perf_counter() - start
    return result


def markdown(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        "# Offline keyword labels: label->text retrieval",
        "",
        "Made by `bench/labels.py` (see its docstring for the method and the variants). Each",
        "cluster's and topic's first keyword label is embedded with all-MiniLM-L6-v2, the",
        "texts' model; its ROC AUC is how well cosine similarity to the label ranks the",
        "topic's own texts above the others (1 = all first, 0.5 = chance), as",
        "`rpt_label_quality` reports it. Per level: mean over the topics (unweighted /",
        "weighted by size). Level 0 = the clusters. Keyword time: counting and ranking the",
        "terms of every level. The labels scored are the first keyword label of each",
        "topic, before the pipeline makes colliding labels distinct.",
        "",
    ]
    names = list(results[0]["variants"]) if results else []
    overall = {
        name: [_all_levels(r["variants"][name]) for r in results if name in r["variants"]]
        for name in names
    }
    best = max(names, key=lambda name: float(np.mean(overall[name])), default=None)
    lines += [
        "## Summary: mean AUC over all levels",
        "",
        table(
            ["variant", *(r["corpus"] for r in results), "mean"],
            [[n, *map(fmt, overall[n]), fmt(float(np.mean(overall[n])))] for n in names],
        ),
        "",
        f"Highest mean: `{best}`. The pipeline's default (keywords.py `NGRAM_RANGE`,"
        " `MIN_TEXTS`, `MIN_TEXT_SHARE`, `MIN_LIFT`, `distinct_terms`) is `default`.",
        "",
    ]
    for result in results:
        variants = result["variants"]
        first = next(iter(variants.values()))["levels"]
        header = ["variant"] + [f"level {r['level']} ({r['topics']})" for r in first]
        header += ["all levels", "keyword time"]
        rows = []
        for name, v in variants.items():
            cells = [f"{fmt(r['mean'])} / {fmt(r['weighted'])}" for r in v["levels"]]
            rows.append([name, *cells, fmt(_all_levels(v)), f"{v['keyword_seconds']:.1f} s"])
        lines += [f"## {result['corpus']} ({result['n_texts']} texts)", "", table(header, rows)]
        shown = [v for v in ("baseline", "default") if v in variants]
        ids = list(variants[shown[0]]["examples"])[:12]
        lines += [
            "",
            "Labels of the first clusters:",
            "",
            table(
                ["cluster", *shown],
                [[i] + [variants[v]["examples"][i] for v in shown] for i in ids],
            ),
            "",
        ]
    lines += [machine_markdown(info, None)]
    return "\n".join(lines)


def _all_levels(variant: dict[str, Any]) -> float:
    """The unweighted mean over the levels of their mean AUC."""
    return float(np.mean([r["mean"] for r in variant["levels"] if r["mean"] is not None]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default=DEFAULT_CORPORA)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--output", type=Path, default=RESULTS / "labels")
    args = parser.parse_args()
    variants = args.variants.split(",")
    results = [evaluate(corpus, variants) for corpus in args.corpora.split(",")]
    info = machine()
    write_json(args.output.with_suffix(".json"), {"machine": info, "results": results})
    args.output.with_suffix(".md").write_text(markdown(results, info))
    log(f"wrote {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
