"""Talking to an OpenAI-compatible endpoint: the client, the retry policy, what a failure is.

Used by the LLM labeller and by the ``openai:<model>`` embedder alike. The client comes from
the environment only (``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``), never from dbt config, and
the key never reaches a log or a table: error messages are scrubbed of it.

Reliability is ours, not the client's (its own retries are off): every call has a timeout;
429, 5xx, timeouts and refused connections are retried with exponential backoff and jitter,
honouring ``Retry-After``; all calls share one deadline. A failure says whether it may get
better by itself (:data:`TRANSPORT`: asked again by the next build) or is the endpoint's
answer to this prompt (:data:`REPLY`: an invalid or refused reply, cached as failed).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import InvalidReplyError

# What kind of failure a call ended with: the next build asks again after a TRANSPORT
# failure (the endpoint may be back), not after a REPLY failure (the same prompt gets the
# same answer from a deterministic model) unless var llm_retry_failed is true.
TRANSPORT = "transport"
REPLY = "reply"

T = TypeVar("T")


class Retryable(Exception):
    """A failure that may pass: retry (after ``retry_after`` seconds when the endpoint says)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Fatal(Exception):
    """A failure retrying will not fix within this build (credentials, a refused request)."""


@dataclass(frozen=True)
class Outcome:
    """How :meth:`RetryPolicy.run` ended: the value, or the reason and kind of failure."""

    value: Any
    attempts: int
    error: str | None = None
    error_kind: str | None = None  # TRANSPORT or REPLY when it failed


def client_from_env(*, timeout: float = 60.0) -> Any | None:
    """An ``openai.OpenAI`` client when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, else None.

    A local endpoint (Ollama, vLLM) needs no key: a placeholder is sent. The client's own
    retries are off: :class:`RetryPolicy` retries with a shared time budget.
    """
    key = os.environ.get("OPENAI_API_KEY")
    base_url = os.environ.get("OPENAI_BASE_URL")
    if not key and not base_url:
        return None
    import openai

    return openai.OpenAI(
        api_key=key or "not-needed", base_url=base_url or None, timeout=timeout, max_retries=0
    )


@dataclass(kw_only=True)
class RetryPolicy:
    """Calls with a per-call timeout, retried on what may get better, within a deadline.

    Retried: HTTP 408/429/5xx, timeouts, refused connections (waiting ``Retry-After`` when
    the endpoint says, else ``backoff_base * 2**(attempt - 1)`` seconds, at most
    ``backoff_cap``, times a jitter in [0.5, 1]) and invalid replies
    (:class:`~text_clustering.errors.InvalidReplyError`). Not retried: 401/403, other 4xx
    and :class:`Fatal` failures such as content-filter refusals.
    """

    max_attempts: int = 4
    timeout: float = 60.0  # seconds per call
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def run(self, call: Callable[[float], T], *, deadline: float | None = None) -> Outcome:
        """``call(timeout)`` until it returns (:class:`Outcome` with the value), or until
        attempts, retries or the deadline run out (:class:`Outcome` with the reason)."""
        error, kind, attempts = "not attempted", TRANSPORT, 0
        while attempts < self.max_attempts:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                error = f"time budget spent after {attempts} attempt(s); last error: {error}"
                kind = TRANSPORT
                break
            attempts += 1
            delay: float | None = None
            try:
                limit = min(self.timeout, remaining or self.timeout)
                return Outcome(call_within(call, limit), attempts)
            except InvalidReplyError as exc:
                error, kind = f"invalid reply: {exc}", REPLY
            except Exception as exc:
                problem = exc if isinstance(exc, Retryable | Fatal) else classify(exc)
                error = str(problem)
                if isinstance(problem, Fatal):
                    kind = REPLY if isinstance(exc, Fatal) else TRANSPORT
                    break
                kind, delay = TRANSPORT, problem.retry_after
            if attempts < self.max_attempts:
                wait = delay if delay is not None else self._backoff(attempts)
                if deadline is not None and time.monotonic() + wait > deadline:
                    error = f"time budget spent after {attempts} attempt(s); last error: {error}"
                    kind = TRANSPORT
                    break
                self.sleep(wait)
        return Outcome(None, attempts, scrub(error), kind)

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)


GRACE = 2.0  # seconds a call may run past its timeout before it is abandoned


class CallTimeout(Retryable):
    """A call that did not complete within its time (e.g. a reply trickling in byte by byte:
    the HTTP client's timeout only bounds the wait between two bytes)."""


def call_within(call: Callable[[float], T], timeout: float) -> T:
    """``call(timeout)``, abandoned when it has not returned ``timeout`` + :data:`GRACE`
    seconds later (it runs in a daemon thread, which is left to end on its own: a hung
    socket never holds up the build or its exit). Raises :class:`CallTimeout` then."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call(timeout)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True, name="text-clustering-call")
    worker.start()
    worker.join(timeout + GRACE)
    if worker.is_alive():
        raise CallTimeout(f"no complete reply within {timeout:.0f}s (the call was abandoned)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def classify(exc: Exception) -> Retryable | Fatal:
    """Map an openai / network exception to retryable or fatal, with a short reason."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    if status is None:  # timeouts, refused connections, DNS: the endpoint may come back
        return Retryable(f"{name}: {scrub(str(exc))}")
    if status == 429 or status >= 500 or status == 408:
        response = getattr(exc, "response", None)
        return Retryable(f"HTTP {status} ({name})", retry_after(response))
    if status in (401, 403):
        return Fatal(
            f"HTTP {status}: the endpoint refused the credentials; check OPENAI_API_KEY "
            "and OPENAI_BASE_URL in the environment"
        )
    return Fatal(f"HTTP {status} ({name}): {scrub(str(exc))}")


def retry_after(response: Any) -> float | None:
    """Seconds the endpoint asks to wait (``retry-after-ms`` / ``retry-after``), at most 120."""
    headers = getattr(response, "headers", None) or {}
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is not None:
            try:
                return max(0.0, min(float(value) / divisor, 120.0))
            except ValueError:
                continue
    return None


def scrub(message: str) -> str:
    """Drop anything that looks like the API key from an error message (at most 500 chars)."""
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        message = message.replace(key, "***")
    return re.sub(r"sk-[A-Za-z0-9_-]{8,}", "sk-***", message)[:500]
