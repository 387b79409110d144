"""The labelling steps, each one dbt Python model:

- :func:`cluster_keywords` (int_cluster_keywords): per cluster, noise included, its top
  c-TF-IDF keywords and the offline keyword labels;
- :func:`cluster_facets` (int_cluster_facets): each cluster's facets, from which SQL picks
  central and diverse representatives (int_cluster_representatives);
- :func:`cluster_prompts` (int_cluster_prompts): per cluster the prompt the LLM is (or would
  be) sent and its cache key;
- :func:`~text_clustering.steps.llm.ask_llm` (int_llm_replies): the one LLM step;
- :func:`name_clusters` (int_clusters_named): the label source of every cluster decided once
  (keywords offline, the LLM's reply online, the default label otherwise), and the labels
  made distinct.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from ..clustering import ALGORITHMS, NOISE
from ..config import read_int, read_str
from ..facets import facets
from ..keywords import KEYWORD_MODEL_NAME, KeywordModel
from ..log import log
from ..naming import make_distinct, relabel_requests
from ..prompts import LLMSettings, build_prompt, request_hash
from ..transport import client_from_env
from ..vectors import read_arrow, to_numpy
from .reuse import reuse_or_build

KEYWORDS_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("top_keywords", pa.list_(pa.string())),
        ("keyword_labels", pa.list_(pa.string())),
    ]
)
FACETS_SCHEMA = pa.schema(
    [
        ("text_id", pa.string()),
        ("cluster_label", pa.int32()),
        ("facet", pa.int32()),
        ("facet_distance", pa.float32()),
    ]
)
PROMPTS_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("request_hash", pa.string()),
        ("system_prompt", pa.string()),
        ("user_prompt", pa.string()),
        ("n_examples", pa.int32()),
    ]
)
NAMES_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("summary_labels", pa.list_(pa.string())),
        ("model_name", pa.string()),
        ("label_source", pa.string()),
        ("label_status", pa.string()),
        ("label_error", pa.string()),
        ("request_hash", pa.string()),
        ("first_labels", pa.list_(pa.string())),
        ("collision_group", pa.int32()),
        ("distinct_by", pa.string()),
        ("added_terms", pa.list_(pa.string())),
        ("relabel_request_hash", pa.string()),
        ("relabel_status", pa.string()),
    ]
)
NOT_ASKED = "not asked: dry run (var llm_dry_run) or no reply recorded"


def cluster_keywords(
    connection: Any, this: Any, clustered: Any, projected: Any, texts: Any, config: Mapping
) -> pa.Table:
    """int_cluster_keywords, from the texts the clusters were fitted on (texts added later do
    not change them); kept as is while those texts, their clusters and vars n and
    default_label are unchanged."""
    n = read_int("n", config.get("n"), minimum=1)
    default_label = read_str("default_label", config.get("default_label"))
    fitted = projected.filter("projection_source = 'fit'").select("text_id")
    documents = clustered.join(fitted, "text_id").join(texts, "text_id")
    documents = documents.select("text_id, cluster_label, text")

    def build() -> pa.Table:
        rows = read_arrow(documents.order("text_id").select("cluster_label, text"))
        classes = [int(c) for c in rows["cluster_label"].to_pylist()]
        model = KeywordModel(n=n, default_label=default_label)  # type: ignore[arg-type]
        model.fit(rows["text"].to_pylist(), classes)
        found = {NOISE: [], **model.keywords_}  # the noise row exists even without noise
        table = [
            {
                "cluster_label": c,
                "top_keywords": found[c],
                "keyword_labels": model.labels_.get(c, [default_label] * n),
            }
            for c in sorted(found)
        ]
        return pa.Table.from_pylist(table, schema=KEYWORDS_SCHEMA)

    return reuse_or_build(connection, this, [documents, n, default_label], build)


def cluster_facets(
    connection: Any, this: Any, clustered: Any, projected: Any, config: Mapping
) -> pa.Table:
    """int_cluster_facets: each cluster's own members (the texts the density clustering put
    in it) split into up to var samples_per_cluster facets; kept while they are unchanged."""
    k = read_int("samples_per_cluster", config.get("samples_per_cluster"), minimum=1)
    algorithms = ", ".join(f"'{a}'" for a in ALGORITHMS)
    members = clustered.filter(f"cluster_label <> {NOISE} and assigned_by in ({algorithms})")
    members = members.select("text_id, cluster_label").join(
        projected.select("text_id, projection"), "text_id"
    )

    def build() -> pa.Table:
        rows = read_arrow(members.order("text_id"))
        labels = rows["cluster_label"].to_numpy(zero_copy_only=False).astype(np.int32)
        points = to_numpy(rows, "projection") if rows.num_rows else np.zeros((0, 2))
        facet, distance = facets(points, labels, k)
        return pa.table(
            {
                "text_id": rows["text_id"],
                "cluster_label": pa.array(labels, pa.int32()),
                "facet": pa.array(facet, pa.int32()),
                "facet_distance": pa.array(distance, pa.float32()),
            },
            schema=FACETS_SCHEMA,
        )

    return reuse_or_build(connection, this, [members, k], build)


def cluster_prompts(representatives: Any, config: Mapping) -> pa.Table:
    """int_cluster_prompts: one prompt per cluster from its representatives (built offline
    too, for audit and for the dry run)."""
    settings = LLMSettings.from_vars(config)
    rows = []
    for c, texts in sorted(examples_by_cluster(representatives).items()):
        prompt, n_examples = build_prompt(texts, settings)
        rows.append(
            {
                "cluster_label": c,
                "request_hash": request_hash(prompt, settings),
                "system_prompt": settings.system_prompt,
                "user_prompt": prompt,
                "n_examples": n_examples,
            }
        )
    return pa.Table.from_pylist(rows, schema=PROMPTS_SCHEMA)


def name_clusters(
    keywords: Any, prompts: Any, replies: Any, representatives: Any, config: Mapping
) -> pa.Table:
    """int_clusters_named: every cluster, noise included, with its labels and where they come
    from (``label_source``: keywords / llm / default / noise), decided here once; labels
    that collide are made distinct (:func:`~text_clustering.naming.make_distinct`)."""
    settings = LLMSettings.from_vars(config)
    default = [read_str("default_label", config.get("default_label"))] * settings.n
    online = client_from_env() is not None  # OPENAI_API_KEY / OPENAI_BASE_URL
    by_cluster = {r["cluster_label"]: r for r in read_arrow(keywords).to_pylist()}
    asked = {r["cluster_label"]: r["request_hash"] for r in read_arrow(prompts).to_pylist()}
    cached = {r["request_hash"]: r for r in read_arrow(replies).to_pylist()}
    rows: dict[int, dict[str, Any]] = {}
    first: dict[int, list[str]] = {}
    for c in sorted(by_cluster):
        reply = cached.get(asked.get(c, ""))
        row = {"cluster_label": c, "request_hash": asked.get(c)}
        if c == NOISE:
            row.update(label_source="noise", label_status="noise", model_name="default_label")
        elif not online:
            first[c] = list(by_cluster[c]["keyword_labels"])
            row.update(label_source="keywords", label_status="ok", model_name=KEYWORD_MODEL_NAME)
        elif reply is not None and reply["status"] == "ok":
            first[c] = list(reply["labels"][0])
            row.update(label_source="llm", label_status="ok", model_name=reply["model_name"])
        else:
            status, error = (reply["status"], reply["error"]) if reply else ("not_asked", NOT_ASKED)
            row.update(label_source="default", label_status=status, label_error=error)
            row.update(model_name="default_label")
        rows[c] = {**row, "summary_labels": first.get(c, default), "first_labels": first.get(c)}
    _make_distinct(rows, first, by_cluster, cached, representatives, settings, online)
    return pa.Table.from_pylist(list(rows.values()), schema=NAMES_SCHEMA)


def _make_distinct(
    rows: dict[int, dict[str, Any]],
    first: dict[int, list[str]],
    keywords: Mapping[int, Mapping[str, Any]],
    cached: Mapping[str, Mapping[str, Any]],
    representatives: Any,
    settings: LLMSettings,
    online: bool,
) -> None:
    """Distinct labels for the labelled clusters of ``rows`` (updated in place): the LLM's
    relabel of a collision group when distinct, else keywords appended, else the number."""
    proposals: dict[int, list[str]] = {}
    groups = (
        relabel_requests(first, examples_by_cluster(representatives), settings) if online else []
    )
    for group in groups:
        answer = cached.get(group.request_hash)
        status = answer["status"] if answer else "not_asked"
        ok = status == "ok" and len(answer["labels"]) == len(group.group)  # type: ignore[index]
        for rank, c in enumerate(group.group):
            rows[c].update(relabel_request_hash=group.request_hash, relabel_status=status)
            if ok:
                proposals[c] = list(answer["labels"][rank])  # type: ignore[index]
    result = make_distinct(
        first,
        {c: list(keywords[c]["top_keywords"] or []) for c in first},
        relabels=proposals,
        style="parenthesis" if online else "list",
    )
    for c, distinct in result.items():
        row = rows[c]
        row.update(
            summary_labels=distinct.labels,
            collision_group=distinct.collision_group,
            distinct_by=distinct.distinct_by,
            added_terms=list(distinct.added_terms),
        )
        if row.get("relabel_status") == "ok" and distinct.distinct_by != "llm_relabel":
            row["relabel_status"] = "collided"
    _log_distinct(list(result.items()))


def _log_distinct(result: list[tuple[int, Any]]) -> None:
    counts: dict[str, int] = {}
    for _, distinct in result:
        if distinct.distinct_by:
            counts[distinct.distinct_by] = counts.get(distinct.distinct_by, 0) + 1
    if not counts:
        log(f"labels: {len(result)} clusters, no two labels collide")
        return
    collided = sum(1 for _, d in result if d.collision_group is not None)
    log(
        f"labels: {collided} of {len(result)} clusters had colliding labels; made distinct by "
        + ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
    )
    numbered = [c for c, d in result if d.distinct_by == "cluster_number"]
    if numbered:
        log(
            f"labels of clusters {numbered} still collided after appending keywords (no "
            "distinguishing keyword left): their cluster number was appended"
        )


def examples_by_cluster(representatives: Any) -> dict[int, list[str]]:
    """cluster -> its representatives' texts, most central first (noise excluded)."""
    table = read_arrow(representatives.select("cluster_label, representative_rank, text"))
    ordered = table.sort_by([("cluster_label", "ascending"), ("representative_rank", "ascending")])
    out: dict[int, list[str]] = {}
    for c, text in zip(
        ordered["cluster_label"].to_pylist(), ordered["text"].to_pylist(), strict=True
    ):
        if c != NOISE:
            out.setdefault(int(c), []).append(text or "")
    return out
