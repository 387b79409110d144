"""The labelling steps, each one dbt Python model:

- keywords per cluster: level 0 of :func:`~text_clustering.steps.topics.topic_keywords`
  (int_topic_keywords; int_cluster_keywords selects it);
- :func:`cluster_facets` (int_cluster_facets): each cluster's facets, from which SQL picks
  central and diverse representatives (int_cluster_representatives);
- :func:`cluster_prompts` (int_cluster_prompts): per cluster the prompt the LLM is (or would
  be) sent and its cache key;
- :func:`~text_clustering.steps.llm.ask_llm` (int_llm_replies): the one LLM step;
- naming the clusters and topics: :mod:`~text_clustering.steps.naming`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa

from ..clustering import ALGORITHMS, NOISE
from ..config import read_int
from ..facets import facets
from ..log import log
from ..prompts import LLMSettings, build_prompt, request_hash
from ..redact import redaction_counts
from ..vectors import read_arrow, to_numpy
from .reuse import read_previous, reuse_or_build

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
        ("redactions", pa.map_(pa.string(), pa.int32())),
        ("representative_ids", pa.list_(pa.string())),
        ("settings_key", pa.string()),
    ]
)


def fitted_documents(clustered: Any, projected: Any, texts: Any) -> Any:
    """``(text_id, cluster_label, text)`` of the texts the clusters were fitted on (texts
    assigned later do not change keywords, prompts or topics' names)."""
    fitted = projected.filter("projection_source = 'fit'").select("text_id")
    documents = clustered.join(fitted, "text_id").join(texts, "text_id")
    return documents.select("text_id, cluster_label, text")


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
        return facet_table(read_arrow(members.order("text_id")), k)

    return reuse_or_build(connection, this, [members, k], build)


def facet_table(rows: pa.Table, k: int) -> pa.Table:
    """int_cluster_facets' rows from the clusters' own members' ``(text_id, cluster_label,
    projection)`` in ``text_id`` order. The DuckDB step and the Spark driver both call it."""
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


KEEP_SHARE = 0.5  # a prompt is kept while this share of the texts it shows still represent it


def cluster_prompts(connection: Any, this: Any, representatives: Any, config: Mapping) -> pa.Table:
    """int_cluster_prompts: one prompt per cluster from its representatives (built offline
    too, for audit and for the dry run). A cluster whose previous prompt (``this``, the
    previous build's rows) was made with the same settings and still shows at least
    :data:`KEEP_SHARE` of its current representatives keeps that prompt verbatim - so after a
    refit a cluster that kept its id and barely changed is answered by the reply cache, with
    no LLM call."""
    settings = LLMSettings.from_vars(config)
    key = settings_key(settings)
    previous = read_previous(connection, this, PROMPTS_SCHEMA)
    before = {r["cluster_label"]: r for r in previous.to_pylist()} if previous else {}
    rows, kept = [], 0
    for c, (ids, texts) in sorted(cluster_representatives(representatives).items()):
        old = before.get(c)
        shown = set(old["representative_ids"] or []) if old else set()
        if old and old["settings_key"] == key and len(shown & set(ids)) >= KEEP_SHARE * len(shown):
            rows.append(old)
            kept += old["representative_ids"] != ids[: old["n_examples"]]
            continue
        prompt, n_examples = build_prompt(texts, settings)
        rows.append(
            {
                "cluster_label": c,
                "request_hash": request_hash(prompt, settings),
                "system_prompt": settings.system_prompt,
                "user_prompt": prompt,
                "n_examples": n_examples,
                "redactions": sorted(redaction_counts(prompt, settings.redact).items()),
                "representative_ids": ids[:n_examples],
                "settings_key": key,
            }
        )
    if kept:
        log(f"prompts: {kept} cluster(s) keep their previous prompt (representatives barely moved)")
    return pa.Table.from_pylist(rows, schema=PROMPTS_SCHEMA)


def settings_key(settings: LLMSettings) -> str:
    """A hash of everything in the LLM settings (a prompt made with other settings is not
    kept)."""
    text = json.dumps(asdict(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cluster_representatives(representatives: Any) -> dict[int, tuple[list[str], list[str]]]:
    """cluster -> (its representatives' ids, their texts), most central first (no noise)."""
    rows = read_arrow(
        representatives.select("cluster_label, representative_rank, text_id, text")
    ).to_pylist()
    rows.sort(key=lambda r: (r["cluster_label"], r["representative_rank"], r["text_id"]))
    out: dict[int, tuple[list[str], list[str]]] = {}
    for r in rows:
        if r["cluster_label"] != NOISE:
            ids, texts = out.setdefault(r["cluster_label"], ([], []))
            ids.append(r["text_id"])
            texts.append(r["text"] or "")
    return out
