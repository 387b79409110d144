"""The LLM step (int_llm_replies): ask what the reply cache lacks, within one time budget.

It walks the layers bottom-up (:func:`~text_clustering.steps.naming.walk`): every cluster
prompt, then one joint prompt per group of clusters whose LLM labels collide, then the
topics of level 1 (their prompts show their parts' final names), their collisions, and so on
up. The cache keeps ok replies and replies that failed as replies (invalid for the schema,
cut off, refused: a deterministic model answers the same again), so an unchanged rebuild
asks nothing; transport failures and skipped requests are asked again by the next build, and
var llm_retry_failed asks every failed request again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from ..config import read_bool, read_float, read_int, read_str
from ..keywords import KEYWORD_MODEL_NAME
from ..labeller import LLMLabeller, Reply
from ..log import log
from ..prompts import LLMSettings
from ..redact import redaction_counts
from ..transport import REPLY, TRANSPORT, client_from_env
from ..vectors import read_arrow
from .naming import CLUSTER, RELABEL, TOPIC, Request, read_inputs, walk

REPLIES_SCHEMA = pa.schema(
    [
        ("request_hash", pa.string()),
        ("kind", pa.string()),
        ("level", pa.int32()),
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
        ("redactions", pa.map_(pa.string(), pa.int32())),
        ("answered_at", pa.timestamp("us", tz="UTC")),
        # a topic family's prompt: the topics it names and the representatives it shows,
        # so that a later build can keep it (steps.naming._kept_family)
        ("topic_ids", pa.list_(pa.int32())),
        ("example_ids", pa.list_(pa.list_(pa.string()))),
        ("settings_key", pa.string()),
    ]
)
FAMILY_COLUMNS = "kind, level, user_prompt, topic_ids, example_ids, settings_key, answered_at"
WHAT = {
    CLUSTER: "cluster prompt(s)",
    TOPIC: "topic prompt(s)",
    RELABEL: "collision group relabel(s)",
}


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
    connection: Any,
    this: Any | None,
    prompts: Any,
    keywords: Any,
    representatives: Any,
    tree: Any,
    topic_keywords: Any,
    topic_representatives: Any,
    config: Mapping,
) -> pa.Table:
    """int_llm_replies: the rows to add to the reply cache ``this`` (None on a first build),
    every layer asked bottom-up, all within var llm_time_budget. With var llm_dry_run it only
    logs, per layer, the calls and tokens a build would spend."""
    settings, how = LLMSettings.from_vars(config), AskSettings.from_config(config)
    default_label = read_str("default_label", config.get("default_label"))
    assert default_label is not None
    inputs = read_inputs(
        prompts, keywords, representatives, tree, topic_keywords, topic_representatives
    )
    client = client_from_env(timeout=how.timeout)  # OPENAI_API_KEY / OPENAI_BASE_URL
    if client is None and not how.dry_run:
        log(
            "no LLM configured (OPENAI_API_KEY / OPENAI_BASE_URL unset): labelling "
            f"{len(inputs.prompts)} clusters and their topics offline with "
            f"{KEYWORD_MODEL_NAME} keywords"
        )
        return REPLIES_SCHEMA.empty_table()
    cache = _cached(connection, this)
    replies = {r["request_hash"]: r for r in cache}
    done = {h for h, r in replies.items() if _final(r, how.retry_failed)}
    labeller = None
    if client is not None:
        labeller = LLMLabeller(
            client=client, settings=settings, max_attempts=how.max_attempts, timeout=how.timeout
        )
    deadline = time.monotonic() + how.time_budget
    new: list[dict[str, Any]] = []

    def ask(requests: list[Request]) -> None:
        rows = _ask(requests, done, labeller, how, settings, deadline)
        new.extend(rows)
        replies.update({r["request_hash"]: r for r in rows})
        done.update(r["request_hash"] for r in rows)

    walk(
        inputs,
        replies,
        settings,
        online=client is not None,
        default_label=default_label,
        ask=ask,
    )
    return pa.Table.from_pylist(new, schema=REPLIES_SCHEMA)


def _cached(connection: Any, this: Any | None) -> list[dict[str, Any]]:
    if this is None:
        return []
    columns = "request_hash, status, error_kind, labels, model_name, error"
    if "topic_ids" in connection.sql(f"select * from {this} limit 0").columns:
        columns += ", " + FAMILY_COLUMNS  # (a cache written before families were kept: none)
    return read_arrow(connection.sql(f"select {columns} from {this}")).to_pylist()


def _final(row: Mapping[str, Any], retry_failed: bool) -> bool:
    """A cached reply the next build does not ask again: ok, or failed as a reply (a
    deterministic model answers the same) unless var llm_retry_failed."""
    if row["status"] == "ok":
        return True
    return row["status"] == "failed" and row["error_kind"] == REPLY and not retry_failed


def _ask(
    requests: list[Request],
    done: set[str],
    labeller: LLMLabeller | None,
    how: AskSettings,
    settings: LLMSettings,
    deadline: float,
) -> list[dict[str, Any]]:
    """Ask every distinct request not in ``done``, ``how.max_concurrency`` at a time, until
    ``deadline``; the cache rows. Logs the plan (calls, cache hits, tokens); a dry run
    asks nothing."""
    unique = {r[0]: r for r in requests}
    if not unique:
        return []
    todo = [r for h, r in unique.items() if h not in done]
    kind, level = requests[0].kind, requests[0].level
    tokens = sum(estimate_tokens(settings.system_prompt + r[1]) for r in todo)
    n_labels = sum(settings.n * r[2] for r in todo)
    hidden = Counter[str]()
    for r in todo:
        hidden.update(redaction_counts(r[1], settings.redact))
    plan = (
        f"LLM plan, level {level}: {len(unique)} {WHAT[kind]}, {len(unique) - len(todo)} "
        f"answered by the cache, {len(todo)} to ask (~{tokens} prompt tokens + "
        f"~{12 * n_labels} completion tokens)"
    )
    if hidden:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(hidden.items()))
        plan += f"; private data redacted in them: {shown}"
    if how.dry_run or labeller is None or not todo:
        log(plan + (" [dry run: nothing asked]" if how.dry_run else ""))
        return []
    log(plan + f"; asking {settings.model}, {how.max_concurrency} at a time")
    replies = _ask_within(todo, labeller, how, deadline)
    failed = sum(1 for r in replies if r.status != "ok")
    ok = len(replies) - failed
    log(f"LLM asked {len(replies)} {WHAT[kind]}: {ok} ok, {failed} failed or skipped")
    now = datetime.now(UTC)
    return [
        {
            **reply.as_row(),
            "request_hash": h,
            "kind": kind,
            "level": level,
            "llm_model": settings.model,
            "n_groups": groups,
            "user_prompt": prompt,
            "redactions": sorted(redaction_counts(prompt, settings.redact).items()),
            "answered_at": now,
            **(family or {}),
        }
        for (h, prompt, groups, kind, level, family), reply in zip(todo, replies, strict=True)
    ]


def _ask_within(
    todo: list[Request], labeller: LLMLabeller, how: AskSettings, deadline: float
) -> list[Reply]:
    def one(request: Request) -> Reply:
        if time.monotonic() >= deadline:
            reason = "time budget spent before asking"
            return Reply([], labeller.settings.model, "skipped", reason, TRANSPORT)
        return labeller.ask(request[1], request[2], deadline=deadline)

    with ThreadPoolExecutor(max_workers=max(1, how.max_concurrency)) as pool:
        return list(pool.map(one, todo))


def estimate_tokens(text: str) -> int:
    """A rough token count (~4 characters a token) for the dry run."""
    return max(1, len(text) // 4)
