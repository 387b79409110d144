"""The LLM step (int_llm_replies): ask what the reply cache lacks, within one time budget.

First every cluster prompt, then one joint prompt per group of clusters whose LLM labels
collide (:func:`~text_clustering.naming.relabel_requests`). The cache keeps ok replies and
replies that failed as replies (invalid for the schema, cut off, refused: a deterministic
model answers the same again), so an unchanged rebuild asks nothing; transport failures and
skipped requests are asked again by the next build, and var llm_retry_failed asks every
failed request again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ..config import read_bool, read_float, read_int
from ..keywords import KEYWORD_MODEL_NAME
from ..labeller import LLMLabeller, Reply
from ..log import log
from ..naming import relabel_requests
from ..prompts import LLMSettings
from ..transport import REPLY, client_from_env
from ..vectors import read_arrow
from .labelling import examples_by_cluster

REPLIES_SCHEMA = pa.schema(
    [
        ("request_hash", pa.string()),
        ("kind", pa.string()),
        ("llm_model", pa.string()),
        ("n_groups", pa.int32()),
        ("labels", pa.list_(pa.list_(pa.string()))),
        ("model_name", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("error_kind", pa.string()),
        ("attempts", pa.int32()),
        ("latency_ms", pa.int64()),
        ("raw_reply", pa.string()),
        ("user_prompt", pa.string()),
        ("answered_at", pa.timestamp("us", tz="UTC")),
    ]
)
CLUSTER, RELABEL = "cluster", "relabel"


@dataclass(frozen=True)
class AskSettings:
    """How the LLM step asks (none of it changes a reply, so none is in the cache key)."""

    timeout: float = 60.0
    max_attempts: int = 4
    max_concurrency: int = 4
    time_budget: float = 900.0
    dry_run: bool = False
    retry_failed: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AskSettings:
        get = config.get
        return cls(
            timeout=read_float("llm_timeout", get("llm_timeout"), minimum=1),
            max_attempts=read_int("llm_max_attempts", get("llm_max_attempts"), minimum=1),
            max_concurrency=read_int("input_batch_size", get("input_batch_size"), minimum=1),
            time_budget=read_float("llm_time_budget", get("llm_time_budget"), minimum=1),
            dry_run=read_bool("llm_dry_run", get("llm_dry_run")),
            retry_failed=read_bool("llm_retry_failed", get("llm_retry_failed")),
        )


def ask_llm(
    connection: Any, this: Any | None, prompts: Any, representatives: Any, config: Mapping
) -> pa.Table:
    """int_llm_replies: the rows to add to the reply cache ``this`` (None on a first build):
    the cluster prompts it has no answer to, then the collision groups of the LLM's labels
    (:func:`~text_clustering.naming.relabel_requests`). With var llm_dry_run it only logs
    the calls and tokens a build would spend."""
    settings, how = LLMSettings.from_vars(config), AskSettings.from_config(config)
    cache = _cached(connection, this)
    done = {r["request_hash"] for r in cache if _final(r, how.retry_failed)}
    client = client_from_env(timeout=how.timeout)  # OPENAI_API_KEY / OPENAI_BASE_URL
    prompt_rows = read_arrow(prompts).to_pylist()
    if client is None and not how.dry_run:
        log(
            "no LLM configured (OPENAI_API_KEY / OPENAI_BASE_URL unset): labelling "
            f"{len(prompt_rows)} clusters offline with {KEYWORD_MODEL_NAME} keywords"
        )
        return REPLIES_SCHEMA.empty_table()
    labeller = None
    if client is not None:
        labeller = LLMLabeller(
            client=client, settings=settings, max_attempts=how.max_attempts, timeout=how.timeout
        )
    asked = [(r["request_hash"], r["user_prompt"], 1) for r in prompt_rows]
    new = _ask(asked, done, labeller, how, CLUSTER, settings)
    answered = {r["request_hash"]: r["labels"] for r in [*cache, *new] if r["status"] == "ok"}
    first = {
        r["cluster_label"]: list(answered[r["request_hash"]][0])
        for r in prompt_rows
        if r["request_hash"] in answered
    }
    groups = relabel_requests(first, examples_by_cluster(representatives), settings)
    relabels = [(g.request_hash, g.user_prompt, len(g.group)) for g in groups]
    if how.dry_run and not relabels:
        log(
            "LLM plan: no collision group among the LLM labels known so far (clusters not "
            "labelled yet may add some) [dry run: nothing asked]"
        )
    new += _ask(relabels, done, labeller, how, RELABEL, settings)
    return pa.Table.from_pylist(new, schema=REPLIES_SCHEMA)


def _cached(connection: Any, this: Any | None) -> list[dict[str, Any]]:
    if this is None:
        return []
    columns = "request_hash, status, error_kind, labels"
    return read_arrow(connection.sql(f"select {columns} from {this}")).to_pylist()


def _final(row: Mapping[str, Any], retry_failed: bool) -> bool:
    """A cached reply the next build does not ask again: ok, or failed as a reply (a
    deterministic model answers the same) unless var llm_retry_failed."""
    if row["status"] == "ok":
        return True
    return row["status"] == "failed" and row["error_kind"] == REPLY and not retry_failed


def _ask(
    requests: list[tuple[str, str, int]],
    done: set[str],
    labeller: LLMLabeller | None,
    how: AskSettings,
    kind: str,
    settings: LLMSettings,
) -> list[dict[str, Any]]:
    """Ask every distinct request ``(request_hash, user_prompt, groups)`` not in ``done``,
    ``how.max_concurrency`` at a time within ``how.time_budget`` seconds; the cache rows.
    Logs the plan (calls, cache hits, tokens); a dry run asks nothing."""
    unique = {h: (h, prompt, k) for h, prompt, k in requests}
    todo = [r for h, r in unique.items() if h not in done]
    if not unique:
        return []
    what = "cluster prompt(s)" if kind == CLUSTER else "collision group relabel(s)"
    tokens = sum(estimate_tokens(settings.system_prompt + prompt) for _, prompt, _ in todo)
    n_labels = sum(settings.n * k for _, _, k in todo)
    plan = (
        f"LLM plan: {len(unique)} {what}, {len(unique) - len(todo)} answered by the cache, "
        f"{len(todo)} to ask (~{tokens} prompt tokens + ~{12 * n_labels} completion tokens)"
    )
    if how.dry_run or labeller is None or not todo:
        log(plan + (" [dry run: nothing asked]" if how.dry_run else ""))
        return []
    log(plan + f"; asking {settings.model}, {how.max_concurrency} at a time")
    replies = _ask_within(todo, labeller, how)
    failed = sum(1 for r in replies if r.status != "ok")
    log(f"LLM asked {len(replies)} {what}: {len(replies) - failed} ok, {failed} failed or skipped")
    now = datetime.now(UTC)
    return [
        {
            **reply.as_row(),
            "request_hash": h,
            "kind": kind,
            "llm_model": settings.model,
            "n_groups": k,
            "user_prompt": prompt,
            "answered_at": now,
        }
        for (h, prompt, k), reply in zip(todo, replies, strict=True)
    ]


def _ask_within(
    todo: list[tuple[str, str, int]], labeller: LLMLabeller, how: AskSettings
) -> list[Reply]:
    deadline = time.monotonic() + how.time_budget

    def one(request: tuple[str, str, int]) -> Reply:
        if time.monotonic() >= deadline:
            reason = "time budget spent before asking"
            return Reply([], labeller.settings.model, "skipped", reason, "transport")
        return labeller.ask(request[1], request[2], deadline=deadline)

    with ThreadPoolExecutor(max_workers=max(1, how.max_concurrency)) as pool:
        return list(pool.map(one, todo))


def estimate_tokens(text: str) -> int:
    """A rough token count (~4 characters a token) for the dry run."""
    return max(1, len(text) // 4)
