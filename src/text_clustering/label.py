"""The labelling steps of the pipeline, each one dbt Python model:

1. :func:`keywords_table`: per cluster (noise included) its top c-TF-IDF keywords and the
   offline keyword labels;
2. :func:`prompts_table`: per cluster the prompt the LLM is (or would be) sent, and its
   cache key ``request_hash``;
3. :func:`responses_table`: the LLM's replies for the prompts not yet answered: the rows an
   incremental cache model appends;
4. :func:`relabel_prompts_table`: clusters whose first LLM labels collide
   (:func:`~text_clustering.keywords.collision_groups`), one prompt per collision group
   showing every sibling's examples and current label;
5. :func:`relabels_table`: the LLM's replies to those prompts (a second incremental cache);
6. :func:`distinct_labels_table`: every labelled cluster's final labels, distinct: the
   relabel when it is distinct, else the label with distinguishing keywords appended, else
   (nothing left to tell them apart) with its cluster number.

The model ``int_clusters_labelled`` (SQL) joins them into one row per cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa

from .cluster import NOISE
from .keywords import (
    KEYWORD_MODEL_NAME,
    class_tfidf,
    collision_groups,
    disambiguate,
    label_from_keywords,
    label_key,
    render_label,
)
from .llm import (
    LLMLabeller,
    LLMSettings,
    Reply,
    build_prompt,
    build_relabel_prompt,
    request_hash,
)
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
RELABEL_PROMPTS_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("collision_group", pa.int32()),
        ("sibling_rank", pa.int32()),
        ("n_siblings", pa.int32()),
        ("first_labels", pa.list_(pa.string())),
        ("llm_model", pa.string()),
        ("request_hash", pa.string()),
        ("system_prompt", pa.string()),
        ("user_prompt", pa.string()),
        ("n_examples", pa.int32()),
        ("settings_json", pa.string()),
    ]
)
RELABELS_SCHEMA = pa.schema(
    [
        ("request_hash", pa.string()),
        ("llm_model", pa.string()),
        ("n_siblings", pa.int32()),
        ("labels", pa.list_(pa.list_(pa.string()))),
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
DISTINCT_SCHEMA = pa.schema(
    [
        ("cluster_label", pa.int32()),
        ("first_labels", pa.list_(pa.string())),
        ("summary_labels", pa.list_(pa.string())),
        ("collision_group", pa.int32()),
        ("distinct_by", pa.string()),
        ("added_terms", pa.list_(pa.string())),
        ("relabel_request_hash", pa.string()),
        ("relabel_status", pa.string()),
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
    rows = []
    for c, texts in sorted(_examples(representatives).items()):
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


def _plan_and_ask(
    todo: list[dict[str, Any]],
    n_unique: int,
    ask: Callable[[dict[str, Any], float], Reply],
    labeller: LLMLabeller | None,
    *,
    what: str,
    max_concurrency: int,
    time_budget: float,
    dry_run: bool,
) -> list[Reply] | None:
    """Log the plan (calls, cache hits, tokens) and, unless a dry run, ask ``todo``
    ``max_concurrency`` at a time within ``time_budget`` seconds; None when nothing asked."""
    cached = n_unique - len(todo)
    tokens = sum(estimate_tokens(r["system_prompt"] + r["user_prompt"]) for r in todo)
    n = LLMSettings.from_json(todo[0]["settings_json"]).n if todo else 1
    n_labels = sum(n * (r.get("n_siblings") or 1) for r in todo)  # labels asked for in all
    plan = (
        f"LLM plan: {n_unique} {what}, {cached} answered by the cache, "
        f"{len(todo)} to ask (~{tokens} prompt tokens + ~{12 * n_labels} "
        "completion tokens)"
    )
    if dry_run or labeller is None or not todo:  # labeller is None only in a dry run
        log(plan + (" [dry run: nothing asked]" if dry_run else ""))
        return None
    log(plan + f"; asking {labeller.settings.model}, {max_concurrency} at a time")
    deadline = time.monotonic() + time_budget

    def guarded(row: dict[str, Any]) -> Reply:
        if time.monotonic() >= deadline:
            return Reply([], labeller.settings.model, "skipped", "time budget spent before asking")
        return ask(row, deadline)

    with ThreadPoolExecutor(max_workers=max(1, max_concurrency)) as pool:
        replies = list(pool.map(guarded, todo))
    failed = sum(1 for r in replies if r.status != "ok")
    log(f"LLM asked {len(replies)} {what}: {len(replies) - failed} ok, {failed} failed or skipped")
    return replies


def _unique_requests(rows: list[dict[str, Any]], answered: set[str]) -> tuple[int, list]:
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["request_hash"], row)
    return len(unique), [r for h, r in unique.items() if h not in answered]


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
    n_unique, todo = _unique_requests(wanted, answered)
    replies = _plan_and_ask(
        todo,
        n_unique,
        lambda row, deadline: labeller.ask(row["user_prompt"], deadline=deadline),  # type: ignore[union-attr]
        labeller,
        what="cluster prompt(s)",
        max_concurrency=max_concurrency,
        time_budget=time_budget,
        dry_run=dry_run,
    )
    if replies is None:
        return RESPONSES_SCHEMA.empty_table()
    now = datetime.now(UTC)
    out = [
        {
            **reply.as_row(),
            "request_hash": row["request_hash"],
            "llm_model": row["llm_model"],
            "user_prompt": row["user_prompt"],
            "answered_at": now,
        }
        for row, reply in zip(todo, replies, strict=True)
    ]
    return pa.Table.from_pylist(out, schema=RESPONSES_SCHEMA)


def relabel_prompts_table(
    prompts: pa.Table, responses: pa.Table, representatives: pa.Table
) -> pa.Table:
    """Clusters whose first LLM labels collide, one prompt per collision group.

    ``prompts`` is int_cluster_prompts, ``responses`` the LLM response cache (rows with
    ``status = 'ok'`` count), ``representatives`` ``(cluster_label, representative_rank,
    text)``. Only ``llm`` clusters with an ok reply take part; collisions are judged on
    each cluster's first label (:func:`~text_clustering.keywords.collision_groups`).
    Returns one row per sibling: its group (the smallest cluster_label of the group), its
    rank in the prompt, its current labels and the group's prompt and cache key.
    """
    replies = {
        r["request_hash"]: r["labels"]
        for r in responses.select(["request_hash", "status", "labels"]).to_pylist()
        if r["status"] == "ok" and r["labels"]
    }
    asked = {
        r["cluster_label"]: r
        for r in prompts.to_pylist()
        if r["labeller"] == LLM_LABELLER and r["request_hash"] in replies
    }
    if not asked:
        return RELABEL_PROMPTS_SCHEMA.empty_table()
    first = {c: list(replies[r["request_hash"]]) for c, r in asked.items()}
    examples = _examples(representatives)
    settings = LLMSettings.from_json(next(iter(asked.values()))["settings_json"])
    rows = []
    for group in collision_groups({c: labels[0] for c, labels in first.items()}):
        siblings = [("; ".join(first[c]), examples.get(c, [])) for c in group]
        prompt, shown = build_relabel_prompt(siblings, settings)
        key = request_hash(prompt, settings)
        for rank, (c, n_examples) in enumerate(zip(group, shown, strict=True), start=1):
            rows.append(
                {
                    "cluster_label": c,
                    "collision_group": group[0],
                    "sibling_rank": rank,
                    "n_siblings": len(group),
                    "first_labels": first[c],
                    "llm_model": settings.model,
                    "request_hash": key,
                    "system_prompt": settings.system_prompt,
                    "user_prompt": prompt,
                    "n_examples": n_examples,
                    "settings_json": settings.to_json(),
                }
            )
    if rows:
        groups = len({r["collision_group"] for r in rows})
        log(f"{len(rows)} clusters in {groups} collision group(s) of LLM labels: relabelling")
    return pa.Table.from_pylist(rows, schema=RELABEL_PROMPTS_SCHEMA)


def _examples(representatives: pa.Table) -> dict[int, list[str]]:
    ordered = representatives.sort_by(
        [("cluster_label", "ascending"), ("representative_rank", "ascending")]
    )
    out: dict[int, list[str]] = {}
    for c, text in zip(
        ordered["cluster_label"].to_pylist(), ordered["text"].to_pylist(), strict=True
    ):
        if c != NOISE:
            out.setdefault(int(c), []).append(text or "")
    return out


def relabels_table(
    relabel_prompts: pa.Table,
    answered: set[str],
    labeller: LLMLabeller | None,
    *,
    max_concurrency: int = 4,
    time_budget: float = 600.0,
    dry_run: bool = False,
) -> pa.Table:
    """Ask the LLM, once per collision group whose ``request_hash`` is not in ``answered``,
    for distinct labels of its siblings (:meth:`LLMLabeller.ask_group`): the rows an
    incremental cache appends, ``labels`` holding one list of labels per sibling in prompt
    order. Same concurrency, budget and dry run as :func:`responses_table`.
    """
    n_unique, todo = _unique_requests(relabel_prompts.to_pylist(), answered)
    if not n_unique:
        if dry_run:
            log(
                "LLM plan: no collision group among the LLM labels known so far (clusters "
                "not labelled yet may add some) [dry run: nothing asked]"
            )
        return RELABELS_SCHEMA.empty_table()
    replies = _plan_and_ask(
        todo,
        n_unique,
        lambda row, deadline: labeller.ask_group(  # type: ignore[union-attr]
            row["user_prompt"], row["n_siblings"], deadline=deadline
        ),
        labeller,
        what="collision group relabel(s)",
        max_concurrency=max_concurrency,
        time_budget=time_budget,
        dry_run=dry_run,
    )
    if replies is None:
        return RELABELS_SCHEMA.empty_table()
    now = datetime.now(UTC)
    out = [
        {
            **reply.as_row(),
            "request_hash": row["request_hash"],
            "llm_model": row["llm_model"],
            "n_siblings": row["n_siblings"],
            "user_prompt": row["user_prompt"],
            "answered_at": now,
        }
        for row, reply in zip(todo, replies, strict=True)
    ]
    return pa.Table.from_pylist(out, schema=RELABELS_SCHEMA)


@dataclass(frozen=True)
class DistinctLabels:
    """A cluster's final labels and how they were made distinct.

    ``distinct_by``: None (its first label collided with none), ``llm_relabel``,
    ``keywords`` (distinguishing keywords appended to its first label) or
    ``cluster_number`` (nothing else told it apart).
    """

    labels: list[str]
    collision_group: int | None = None
    distinct_by: str | None = None
    added_terms: tuple[str, ...] = ()


def make_distinct(
    first: Mapping[int, Sequence[str]],
    keywords: Mapping[int, Sequence[str]],
    *,
    relabels: Mapping[int, Sequence[str]] | None = None,
    style: Literal["list", "parenthesis"] = "list",
    max_terms: int = 3,
) -> dict[int, DistinctLabels]:
    """Distinct labels for every cluster of ``first`` (its labels, the first one primary).

    1. Clusters whose primary labels collide form groups. A group takes its ``relabels``
       (new labels per sibling) when every sibling has them and their primary labels
       collide neither with each other nor with any other cluster's current label.
    2. What still collides gets keywords appended
       (:func:`~text_clustering.keywords.disambiguate`, in ``style``).
    3. What collides even then gets ``(cluster <id>)`` appended.

    Only primary labels are compared and changed; the result has no two clusters whose
    primary labels collide.
    """
    relabels = relabels or {}
    current = {c: list(labels) for c, labels in first.items()}
    groups = collision_groups({c: labels[0] for c, labels in current.items()})
    group_of = {c: group[0] for group in groups for c in group}
    by: dict[int, str | None] = dict.fromkeys(current)
    for group in groups:
        proposal = [relabels.get(c) for c in group]
        if not all(p and len(p) == len(current[c]) for p, c in zip(proposal, group, strict=True)):
            continue
        keys = [label_key(p[0]) for p in proposal]  # type: ignore[index]
        others = {label_key(current[c][0]) for c in current if c not in group}
        if len(set(keys)) == len(keys) and not set(keys) & others:
            for c, p in zip(group, proposal, strict=True):
                current[c], by[c] = list(p), "llm_relabel"  # type: ignore[arg-type]
    fixed = disambiguate(
        {c: labels[0] for c, labels in current.items()},
        keywords,
        style=style,
        max_terms=max_terms,
    )
    added: dict[int, tuple[str, ...]] = {}
    for c, result in fixed.items():
        if result.added_terms:
            current[c][0], by[c], added[c] = result.label, "keywords", result.added_terms
        if result.collides:
            current[c][0] = render_label(current[c][0], [f"cluster {c}"], "parenthesis")
            by[c] = "cluster_number"
    return {
        c: DistinctLabels(current[c], group_of.get(c), by[c], added.get(c, ()))
        for c in sorted(current)
    }


def distinct_labels_table(
    keywords: pa.Table,
    prompts: pa.Table,
    responses: pa.Table,
    relabel_prompts: pa.Table,
    relabels: pa.Table,
) -> pa.Table:
    """Every cluster that has labels (keyword labels offline, an ok LLM reply online) with
    its final, distinct labels (:func:`make_distinct`) and how they were made distinct.

    ``keywords`` is int_cluster_keywords, ``prompts`` int_cluster_prompts, ``responses``
    and ``relabels`` the two LLM caches, ``relabel_prompts`` int_cluster_relabel_prompts.
    ``relabel_status`` (clusters of a relabel group only): the relabel request's status,
    ``collided`` when it was ok but not distinct, ``not_asked`` when it has no reply yet
    (dry run).
    """
    by_cluster = {r["cluster_label"]: r for r in keywords.to_pylist()}
    replies = {
        r["request_hash"]: r["labels"]
        for r in responses.select(["request_hash", "status", "labels"]).to_pylist()
        if r["status"] == "ok" and r["labels"]
    }
    first: dict[int, list[str]] = {}
    written_by_llm = False
    for row in prompts.to_pylist():
        c = row["cluster_label"]
        if c == NOISE or c not in by_cluster:
            continue
        if row["labeller"] == KEYWORD_MODEL_NAME:
            first[c] = list(by_cluster[c]["keyword_labels"])
        elif row["request_hash"] in replies:
            first[c], written_by_llm = list(replies[row["request_hash"]]), True
    siblings = {
        r["cluster_label"]: r for r in relabel_prompts.to_pylist() if r["cluster_label"] in first
    }
    answers = {r["request_hash"]: r for r in relabels.to_pylist()}
    proposals: dict[int, list[str]] = {}
    for c, row in siblings.items():
        answer = answers.get(row["request_hash"])
        if (
            answer
            and answer["status"] == "ok"
            and list(row["first_labels"]) == first[c]
            and len(answer["labels"]) == row["n_siblings"]
        ):
            proposals[c] = list(answer["labels"][row["sibling_rank"] - 1])
    result = make_distinct(
        first,
        {c: list(by_cluster[c]["top_keywords"] or []) for c in first},
        relabels=proposals,
        style="parenthesis" if written_by_llm else "list",
    )
    rows = []
    for c, distinct in result.items():
        relabel_status = None
        if c in siblings:
            answer = answers.get(siblings[c]["request_hash"])
            relabel_status = answer["status"] if answer else "not_asked"
            if relabel_status == "ok" and distinct.distinct_by != "llm_relabel":
                relabel_status = "collided"
        rows.append(
            {
                "cluster_label": c,
                "first_labels": first[c],
                "summary_labels": distinct.labels,
                "collision_group": distinct.collision_group,
                "distinct_by": distinct.distinct_by,
                "added_terms": list(distinct.added_terms),
                "relabel_request_hash": siblings[c]["request_hash"] if c in siblings else None,
                "relabel_status": relabel_status,
            }
        )
    _log_distinct(rows)
    return pa.Table.from_pylist(rows, schema=DISTINCT_SCHEMA)


def _log_distinct(rows: list[dict[str, Any]]) -> None:
    counts: dict[str, int] = {}
    for row in rows:
        if row["distinct_by"]:
            counts[row["distinct_by"]] = counts.get(row["distinct_by"], 0) + 1
    if not counts:
        log(f"labels: {len(rows)} clusters, no two labels collide")
        return
    log(
        f"labels: {sum(1 for r in rows if r['collision_group'] is not None)} of {len(rows)} "
        "clusters had colliding labels; made distinct by "
        + ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
    )
    numbered = [r["cluster_label"] for r in rows if r["distinct_by"] == "cluster_number"]
    if numbered:
        log(
            f"labels of clusters {numbered} still collided after appending keywords (no "
            "distinguishing keyword left): their cluster number was appended"
        )
