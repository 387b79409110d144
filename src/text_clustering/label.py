"""One row per cluster: the labels, who wrote them, and the cluster's top keywords."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from .cluster import NOISE
from .keywords import KEYWORD_MODEL_NAME, class_tfidf, label_from_keywords
from .llm import LabelResult, LLMLabeller

DEFAULT_LABEL_MODEL_NAME = "default_label"

LABELS_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("summary_labels", pa.list_(pa.string())),
        ("summary_label", pa.string()),
        ("model_name", pa.string()),
        ("label_status", pa.string()),
        ("label_error", pa.string()),
        ("top_keywords", pa.list_(pa.string())),
    ]
)


def join_labels(labels: list[str]) -> str:
    """The plain-text form of a cluster's labels (``summary_label``)."""
    return "; ".join(labels)


def label_clusters(
    documents: pa.Table,
    representatives: pa.Table,
    *,
    n: int = 1,
    default_label: str = "Unclassified",
    labeller: LLMLabeller | None = None,
    max_concurrency: int = 4,
    top_k_keywords: int = 10,
) -> pa.Table:
    """Label every cluster.

    ``documents``: ``(cluster_label, text)`` for every clustered text (noise included: it
    sharpens the keywords' IDF). ``representatives``: ``(cluster_label, text,
    representative_rank)``, the examples shown to the LLM. Without a ``labeller`` the labels
    are the clusters' top c-TF-IDF terms. The noise cluster (-1) always gets a row with
    ``default_label``; a cluster the LLM fails on gets ``default_label`` and the reason.
    """
    classes = [int(c) for c in documents["cluster_label"].to_pylist()]
    keywords = class_tfidf(documents["text"].to_pylist(), classes, top_k=max(top_k_keywords, 6 * n))
    clusters = sorted(c for c in set(classes) if c != NOISE)

    if labeller is None:
        print(
            f"text_clustering: no LLM configured (OPENAI_API_KEY / OPENAI_BASE_URL unset): "
            f"labelling {len(clusters)} clusters offline with {KEYWORD_MODEL_NAME} keywords",
            file=sys.stderr,
            flush=True,
        )
        by_keywords = label_from_keywords(
            {c: keywords[c] for c in clusters}, n=n, default_label=default_label
        )
        results = {c: LabelResult(by_keywords[c], KEYWORD_MODEL_NAME, "ok") for c in clusters}
    else:
        results = _label_with_llm(representatives, clusters, labeller, max_concurrency)

    rows = [
        {
            "cluster_label": NOISE,
            "summary_labels": [default_label] * n,
            "summary_label": join_labels([default_label] * n),
            "model_name": DEFAULT_LABEL_MODEL_NAME,
            "label_status": "noise",
            "label_error": None,
            "top_keywords": keywords.get(NOISE, [])[:top_k_keywords],
        }
    ]
    for c in clusters:
        result = results[c]
        labels = result.labels if result.status == "ok" else [default_label] * n
        rows.append(
            {
                "cluster_label": c,
                "summary_labels": labels,
                "summary_label": join_labels(labels),
                "model_name": result.model_name,
                "label_status": result.status,
                "label_error": result.error,
                "top_keywords": keywords[c][:top_k_keywords],
            }
        )
    return pa.Table.from_pylist(rows, schema=LABELS_SCHEMA)


def _label_with_llm(
    representatives: pa.Table, clusters: list[int], labeller: LLMLabeller, max_concurrency: int
) -> dict[int, LabelResult]:
    ordered = representatives.sort_by(
        [("cluster_label", "ascending"), ("representative_rank", "ascending")]
    )
    examples: dict[int, list[str]] = {c: [] for c in clusters}
    for c, text in zip(
        ordered["cluster_label"].to_pylist(), ordered["text"].to_pylist(), strict=True
    ):
        if c in examples:
            examples[c].append(text)
    print(
        f"text_clustering: asking {labeller.model} for {labeller.n} label(s) for each of "
        f"{len(clusters)} clusters ({max_concurrency} at a time)",
        file=sys.stderr,
        flush=True,
    )
    with ThreadPoolExecutor(max_workers=max(1, max_concurrency)) as pool:
        results = dict(
            zip(clusters, pool.map(lambda c: labeller.label(examples[c]), clusters), strict=True)
        )
    failed = [c for c, r in results.items() if r.status != "ok"]
    if failed:
        print(
            f"text_clustering: {len(failed)} cluster(s) got the default label after LLM "
            f"failures (see label_error): {failed[:20]}",
            file=sys.stderr,
            flush=True,
        )
    return results
