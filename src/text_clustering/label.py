"""The labelling steps of the pipeline, each one dbt Python model:

1. :func:`keywords_table`: per cluster (noise included) its top c-TF-IDF keywords and the
   offline keyword labels;
2. :func:`prompts_table`: per cluster the prompt the LLM is (or would be) sent, and its
   cache key ``request_hash``;
3. :func:`responses_table`: the LLM's replies for the prompts not yet answered: the rows an
   incremental cache model appends.

The model ``int_clusters_labelled`` (SQL) joins the three into one row per cluster.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from .cluster import NOISE
from .keywords import KEYWORD_MODEL_NAME, class_tfidf, label_from_keywords
from .llm import LLMLabeller, LLMSettings, Reply, build_prompt, request_hash
from .log import log

LLM_LABELLER = "llm"

KEYWORDS_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("top_keywords", pa.list_(pa.string())),
        ("keyword_labels", pa.list_(pa.string())),
    ]
)
PROMPTS_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("labeller", pa.string()),
        ("llm_model", pa.string()),
        ("request_hash", pa.string()),
        ("system_prompt", pa.string()),
        ("user_prompt", pa.string()),
        ("n_examples", pa.int32()),
        ("settings_json", pa.string()),
    ]
)
RESPONSES_SCHEMA = pa.schema(
    [
        ("request_hash", pa.string()),
        ("llm_model", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("model_name", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("attempts", pa.int32()),
        ("latency_ms", pa.int64()),
        ("raw_reply", pa.string()),
        ("user_prompt", pa.string()),
        ("answered_at", pa.timestamp("us", tz="UTC")),
    ]
)


def keywords_table(
    documents: pa.Table, *, n: int = 1, default_label: str = "Unclassified", top_k: int = 10
) -> pa.Table:
    """``(cluster_label, text)`` of every clustered text -> per cluster its top ``top_k``
    c-TF-IDF keywords and ``n`` keyword labels (noise included: it sharpens the IDF)."""
    classes = [int(c) for c in documents["cluster_label"].to_pylist()]
    keywords = class_tfidf(documents["text"].to_pylist(), classes, top_k=max(top_k, 6 * n))
    keywords.setdefault(NOISE, [])  # the noise row exists even when nothing is noise
    labels = label_from_keywords(keywords, n=n, default_label=default_label)
    rows = [
        {"cluster_label": c, "top_keywords": keywords[c][:top_k], "keyword_labels": labels[c]}
        for c in sorted(keywords)
    ]
    return pa.Table.from_pylist(rows, schema=KEYWORDS_SCHEMA)


def prompts_table(
    representatives: pa.Table, settings: LLMSettings, *, llm_enabled: bool
) -> pa.Table:
    """``(cluster_label, representative_rank, text)`` -> one prompt per non-noise cluster.

    ``labeller`` is ``llm`` when an endpoint is configured, else ``c-tf-idf``: the prompts
    are built either way, for audit and for the dry run.
    """
    ordered = representatives.sort_by(
        [("cluster_label", "ascending"), ("representative_rank", "ascending")]
    )
    examples: dict[int, list[str]] = {}
    for c, text in zip(
        ordered["cluster_label"].to_pylist(), ordered["text"].to_pylist(), strict=True
    ):
        if c != NOISE:
            examples.setdefault(int(c), []).append(text or "")
    rows = []
    for c, texts in sorted(examples.items()):
        prompt, n_examples = build_prompt(texts, settings)
        rows.append(
            {
                "cluster_label": c,
                "labeller": LLM_LABELLER if llm_enabled else KEYWORD_MODEL_NAME,
                "llm_model": settings.model,
                "request_hash": request_hash(prompt, settings),
                "system_prompt": settings.system_prompt,
                "user_prompt": prompt,
                "n_examples": n_examples,
                "settings_json": settings.to_json(),
            }
        )
    return pa.Table.from_pylist(rows, schema=PROMPTS_SCHEMA)


def estimate_tokens(text: str) -> int:
    """A rough token count (~4 characters a token) for the dry run."""
    return max(1, len(text) // 4)


def responses_table(
    prompts: pa.Table,
    answered: set[str],
    labeller: LLMLabeller | None,
    *,
    max_concurrency: int = 4,
    time_budget: float = 600.0,
    dry_run: bool = False,
) -> pa.Table:
    """Ask the LLM for every ``llm`` prompt whose ``request_hash`` is not in ``answered``
    (the hashes already answered ``ok``), ``max_concurrency`` at a time, all within
    ``time_budget`` seconds. Returns one row per prompt asked (or skipped), to append to
    the cache. With ``dry_run`` nothing is asked: the plan is logged and nothing returned.
    """
    rows = prompts.to_pylist()
    if labeller is None and not dry_run:
        log(
            "no LLM configured (OPENAI_API_KEY / OPENAI_BASE_URL unset): labelling "
            f"{len(rows)} clusters offline with {KEYWORD_MODEL_NAME} keywords"
        )
        return RESPONSES_SCHEMA.empty_table()
    # A dry run plans every prompt, so the cost is known before an endpoint is configured.
    wanted = rows if dry_run else [r for r in rows if r["labeller"] == LLM_LABELLER]
    unique: dict[str, dict[str, Any]] = {}
    for row in wanted:
        unique.setdefault(row["request_hash"], row)
    todo = [r for h, r in unique.items() if h not in answered]
    cached = len(unique) - len(todo)
    tokens = sum(estimate_tokens(r["system_prompt"] + r["user_prompt"]) for r in todo)
    n_labels = LLMSettings.from_json(todo[0]["settings_json"]).n if todo else 1
    plan = (
        f"LLM plan: {len(unique)} cluster prompt(s), {cached} answered by the cache, "
        f"{len(todo)} to ask (~{tokens} prompt tokens + ~{len(todo) * 12 * n_labels} "
        "completion tokens)"
    )
    if dry_run or labeller is None or not todo:  # labeller is None only in a dry run
        log(plan + (" [dry run: nothing asked]" if dry_run else ""))
        return RESPONSES_SCHEMA.empty_table()
    log(plan + f"; asking {labeller.settings.model}, {max_concurrency} at a time")
    deadline = time.monotonic() + time_budget

    def ask(row: dict[str, Any]) -> Reply:
        if time.monotonic() >= deadline:
            return Reply([], labeller.settings.model, "skipped", "time budget spent before asking")
        return labeller.ask(row["user_prompt"], deadline=deadline)

    with ThreadPoolExecutor(max_workers=max(1, max_concurrency)) as pool:
        replies = list(pool.map(ask, todo))
    now = datetime.now(UTC)
    rows = [
        {
            **reply.as_row(),
            "request_hash": row["request_hash"],
            "llm_model": row["llm_model"],
            "user_prompt": row["user_prompt"],
            "answered_at": now,
        }
        for row, reply in zip(todo, replies, strict=True)
    ]
    failed = sum(1 for r in rows if r["status"] != "ok")
    log(f"LLM asked {len(rows)} prompt(s): {len(rows) - failed} ok, {failed} failed or skipped")
    return pa.Table.from_pylist(rows, schema=RESPONSES_SCHEMA)
