"""The LLM labeller: asks an injected OpenAI-compatible client for labels, never raises.

The client is anything with ``chat.completions.create`` (an ``openai.OpenAI`` from
:func:`~text_clustering.transport.client_from_env`, or a fake in tests). Prompts come from
:mod:`~text_clustering.prompts`; retries, timeouts and the failure kinds from
:mod:`~text_clustering.transport`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import InvalidReplyError
from .prompts import LLMSettings
from .replies import parse_group_labels, parse_labels, relabel_schema, response_schema
from .transport import Fatal, Retryable, RetryPolicy


@dataclass
class Reply:
    """The outcome of one request: ``labels`` holds one list of ``n`` labels per group the
    prompt named (one group for a cluster's own prompt, ``k`` for a collision group's).

    ``status`` is ``ok``, ``failed`` or ``skipped`` (time budget spent / dry run);
    ``error_kind`` says whether a failure is the endpoint's answer (``reply``: cached) or
    may pass (``transport``: asked again by the next build).
    """

    labels: list[list[str]]
    model_name: str
    status: str
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0
    latency_ms: int = 0
    raw_reply: str | None = None

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class LLMLabeller(RetryPolicy):
    """Ask an OpenAI-compatible chat endpoint for ``settings.n`` labels per group.

    When the endpoint rejects ``response_format`` (HTTP 400/422), every later request of
    this labeller asks for the JSON in the prompt instead.
    """

    client: Any
    settings: LLMSettings
    _structured: bool = field(default=True, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def ask(self, user_prompt: str, groups: int = 1, *, deadline: float | None = None) -> Reply:
        """Ask one prompt naming ``groups`` groups (1: a cluster's prompt from
        :func:`~text_clustering.prompts.build_prompt`; k > 1: a collision group's from
        :func:`~text_clustering.prompts.build_relabel_prompt`)."""
        n = self.settings.n
        if groups == 1:
            schema = response_schema(n)

            def parse(content: str | None) -> list[list[str]]:
                return [parse_labels(content, n)]
        else:
            schema = relabel_schema(groups, n)

            def parse(content: str | None) -> list[list[str]]:
                return parse_group_labels(content, groups, n)

        return self._ask(user_prompt, schema, parse, deadline)

    def _ask(
        self,
        user_prompt: str,
        schema: dict[str, Any],
        parse: Callable[[str | None], list[list[str]]],
        deadline: float | None,
    ) -> Reply:
        started = time.monotonic()
        raw: list[str | None] = [None]

        def call(timeout: float) -> tuple[list[list[str]], str]:
            response = self._create(user_prompt, schema, timeout=timeout)
            raw[0] = _content(response)
            labels = parse(raw[0])
            return labels, getattr(response, "model", None) or self.settings.model

        outcome = self.run(call, deadline=deadline)
        latency = int((time.monotonic() - started) * 1000)
        if outcome.value is None:
            return Reply(
                [],
                self.settings.model,
                "failed",
                outcome.error,
                outcome.error_kind,
                outcome.attempts,
                latency,
                raw[0],
            )
        labels, model_name = outcome.value
        return Reply(labels, model_name, "ok", None, None, outcome.attempts, latency, raw[0])

    def _create(self, user_prompt: str, schema: dict[str, Any], *, timeout: float) -> Any:
        s = self.settings
        kwargs: dict[str, Any] = {
            "model": s.model,
            "messages": [
                {"role": "system", "content": s.system_prompt},
                {"role": "user", "content": user_prompt},
            ],
            "temperature": s.temperature,
            "timeout": timeout,
        }
        if s.seed is not None:
            kwargs["seed"] = s.seed
        with self._lock:
            structured = s.use_structured_output and self._structured
        if structured:
            kwargs["response_format"] = schema
        try:
            response = self.client.chat.completions.create(**kwargs)
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if structured and status in (400, 422):
                # The endpoint rejects response_format: from now on ask for JSON in the prompt.
                with self._lock:
                    self._structured = False
                raise Retryable(f"response_format rejected (HTTP {status})", 0.0) from None
            raise
        choice = response.choices[0] if getattr(response, "choices", None) else None
        finish = getattr(choice, "finish_reason", None)
        if finish == "content_filter":
            raise Fatal("the endpoint's content filter refused to answer")
        if finish == "length":
            raise InvalidReplyError("reply cut off (finish_reason=length)")
        return response


def _content(response: Any) -> str | None:
    try:
        return response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None
