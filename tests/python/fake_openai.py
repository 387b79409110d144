"""A local OpenAI-compatible HTTP server for tests: real HTTP on 127.0.0.1, no canned answers.

``POST /v1/chat/completions`` reads the numbered examples in the prompt and answers with labels
built from them (the most frequent long words of the examples), so a test can tell which texts
reached which cluster. ``POST /v1/embeddings`` returns a deterministic vector per input text
(hashed character trigrams), so similar texts get similar vectors. The server honours
``response_format`` (or rejects it when told to), counts calls, and plays failure scenarios:
a scripted sequence of behaviours per call, and/or a seeded random failure rate.

Behaviours: ``ok``, ``429`` (with ``Retry-After``), ``500``, ``401``, ``slow`` (sleeps past
the client's timeout), ``malformed`` (not JSON), ``wrong_count`` (one label too many),
``empty``, ``length`` (finish_reason=length), ``filter`` (finish_reason=content_filter),
``obey`` (a gullible model: a prompt containing "Ignore the instructions" gets 40 labels of
500 characters saying PWNED; other prompts a normal answer), ``collide`` (a lazy model: every
cluster prompt gets one of two near-identical labels, "Software tools" / "software tool." or
"Misc programs" / "Programs", chosen by a hash of the prompt, so different clusters collide;
a relabel prompt showing the siblings gets distinct labels, as ``ok``), ``stubborn`` (as
``collide``, and a relabel prompt gets the same label for every sibling), ``flat`` (as
``collide``, and a relabel prompt is answered like a cluster prompt, ``{"labels": [...]}``:
a server that ignores the relabel schema, so the reply never fits it), ``hang`` (reads the
request and never answers, for ``hang_seconds``), ``held`` (answers 500 only once the test sets
``state.release``, or after ``hang_seconds``: keeps a build inside its LLM step), ``drip``
(a valid reply sent one byte per second: the HTTP client's timeout, which bounds the wait
between two bytes, never fires).

A relabel prompt (``## Group 1 (current label: ...)`` sections, see ``build_relabel_prompt``)
is answered ``{"groups": [{"group": i, "labels": [...]}]}``: for each group the most frequent
long word of its examples that no earlier group took.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

MODEL_REPORTED = "fake-llm-1"
EMBEDDING_DIM = 32


@dataclass
class ServerState:
    """What the server has seen, and how it should behave."""

    calls: int = 0
    chat_calls: int = 0
    embedding_calls: int = 0
    embedded_texts: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    script: list[str] = field(default_factory=list)  # behaviours for the next calls, in order
    default: str = "ok"  # behaviour once the script is used up
    fail_rate: float = 0.0  # share of calls answered 500 at random (seeded)
    reject_response_format: bool = False
    retry_after: str = "0"
    slow_seconds: float = 3.0
    hang_seconds: float = 600.0
    release: threading.Event = field(default_factory=threading.Event)  # ends ``held``
    rng: random.Random = field(default_factory=lambda: random.Random(1234))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def relabel_calls(self) -> int:
        """Chat calls that asked to relabel a collision group (``current label`` groups)."""
        with self.lock:
            prompts = [r["messages"][-1]["content"] for r in self.requests if "messages" in r]
        return sum(1 for p in prompts if is_relabel_prompt(p))

    @property
    def topic_calls(self) -> int:
        """Chat calls that asked to name a topic of the hierarchy (``## Its parts`` prompts)."""
        with self.lock:
            prompts = [r["messages"][-1]["content"] for r in self.requests if "messages" in r]
        return sum(1 for p in prompts if "# Its parts\n" in p)

    @property
    def label_calls(self) -> int:
        """Chat calls that asked for one cluster's first labels."""
        return self.chat_calls - self.relabel_calls - self.topic_calls

    def next_behaviour(self) -> str:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            if self.fail_rate and self.rng.random() < self.fail_rate:
                return "500"
            return self.default


def _ranked_words(text: str) -> list[str]:
    examples = re.findall(r"^\d+\. (.*)$", text, flags=re.MULTILINE)
    words = Counter(w.lower() for line in examples for w in re.findall(r"[A-Za-z]{5,}", line))
    return [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))]


def labels_from_prompt(prompt: str) -> list[str]:
    """The labels a well-behaved LLM would give: built from the prompt's numbered examples."""
    n_match = re.search(r"exactly (\d+) distinct label", prompt)
    n = int(n_match.group(1)) if n_match else 1
    ranked = _ranked_words(prompt) or ["nothing"]
    return [f"{ranked[i % len(ranked)]} texts" for i in range(n)]


# a group of a joint prompt: a relabel's (with its current label) or a family of topics'
GROUP = re.compile(r"^## Group (\d+)(?: \(current label: (.*)\))?$", flags=re.MULTILINE)
LAZY_LABELS = [("Software tools", "software tool."), ("Misc programs", "Programs")]


def is_relabel_prompt(prompt: str) -> bool:
    """A relabel prompt: groups that show their current label."""
    return "(current label: " in prompt


def is_group_prompt(prompt: str) -> bool:
    """A joint prompt (relabel, or sibling topics): answered {"groups": [...]}."""
    return GROUP.search(prompt) is not None


def lazy_labels(prompt: str) -> list[str]:
    """``collide``: one of two near-identical labels per hash of the prompt, then fillers."""
    n_match = re.search(r"exactly (\d+) distinct label", prompt)
    n = int(n_match.group(1)) if n_match else 1
    digest = hashlib.md5(prompt.encode()).digest()
    label = LAZY_LABELS[digest[0] % 2][digest[1] % 2]
    return [label] + [f"{label} {i}" for i in range(2, n + 1)]


def relabels_from_prompt(prompt: str, *, distinct: bool = True) -> list[dict[str, Any]]:
    """A relabel reply: per group, labels from its own examples, no word used twice."""
    n_match = re.search(r"exactly (\d+) label\(s\) for each", prompt)
    n = int(n_match.group(1)) if n_match else 1
    heads = list(GROUP.finditer(prompt))
    used: set[str] = set()
    groups = []
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(prompt)
        section = prompt[head.end() : end]
        current = (head.group(2) or "").lower()
        ranked = [w for w in _ranked_words(section) if w not in used and w not in current]
        ranked = ranked or [f"group{head.group(1)}"]
        used.add(ranked[0])
        labels = [f"{ranked[j % len(ranked)]} texts" for j in range(n)]
        if not distinct:
            labels = ["Software tools"] * n
        groups.append({"group": int(head.group(1)), "labels": labels})
    return groups


def embed_text(text: str) -> list[float]:
    vector = np.zeros(EMBEDDING_DIM)
    padded = f"  {text.lower()}  "
    for i in range(len(padded) - 2):
        digest = hashlib.md5(padded[i : i + 3].encode()).digest()
        vector[digest[0] % EMBEDDING_DIM] += 1.0
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).round(6).tolist()


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(
        self,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
        drip: bool = False,
    ):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if not drip:
                self.wfile.write(data)  # the client may have given up (timeout): fine
                return
            for i in range(len(data)):  # one byte a second, each flushed
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(1.0)

    def do_GET(self) -> None:  # /v1/stats: the call counters, for manual runs
        state = self.state
        with state.lock:
            stats = {
                "calls": state.calls,
                "chat_calls": state.chat_calls,
                "embedding_calls": state.embedding_calls,
                "embedded_texts": state.embedded_texts,
            }
        self._send(200, stats)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        state = self.state
        with state.lock:
            state.calls += 1
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
        if self.path.endswith("/embeddings"):
            self._embeddings(body)
        elif self.path.endswith("/chat/completions"):
            self._chat(body)
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _error(self, behaviour: str) -> bool:
        state = self.state
        if behaviour == "429":
            self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": state.retry_after})
        elif behaviour in ("500", "401"):
            self._send(int(behaviour), {"error": {"message": f"scripted {behaviour}"}})
        elif behaviour == "slow":
            time.sleep(state.slow_seconds)
            self._send(500, {"error": {"message": "too late"}})
        elif behaviour == "hang":
            time.sleep(state.hang_seconds)  # the connection stays open, nothing is sent
        elif behaviour == "held":
            state.release.wait(state.hang_seconds)
            self._send(500, {"error": {"message": "released"}})
        else:
            return False
        return True

    def _embeddings(self, body: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.embedding_calls += 1
        if self._error(self.state.next_behaviour()):
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        with self.state.lock:
            self.state.embedded_texts += len(inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": embed_text(t)}
            for i, t in enumerate(inputs)
        ]
        self._send(200, {"object": "list", "data": data, "model": body.get("model")})

    def _chat(self, body: dict[str, Any]) -> None:
        state = self.state
        with state.lock:
            state.chat_calls += 1
        behaviour = state.next_behaviour()
        if self._error(behaviour):
            return
        if "response_format" in body and state.reject_response_format:
            self._send(400, {"error": {"message": "response_format is not supported"}})
            return
        prompt = body["messages"][-1]["content"]
        labels = labels_from_prompt(prompt)
        if behaviour in ("collide", "stubborn", "flat"):
            labels = lazy_labels(prompt)
        finish = "stop"
        if behaviour == "wrong_count":
            labels = [*labels, "one too many"]
        if behaviour == "obey" and "Ignore the instructions" in prompt:
            labels = ["PWNED " * 83] * 40
        content = json.dumps({"labels": labels})
        if is_group_prompt(prompt) and behaviour != "flat":
            groups = relabels_from_prompt(prompt, distinct=behaviour != "stubborn")
            content = json.dumps({"groups": groups})
        if behaviour == "malformed":
            content = '{"labels": ["trailing comma",]}'
        elif behaviour == "empty":
            content = ""
        elif behaviour == "length":
            finish = "length"
        elif behaviour == "filter":
            content, finish = "", "content_filter"
        elif "response_format" not in body:
            content = f"Sure! Here you go:\n```json\n{content}\n```"
        self._send(
            200,
            {
                "id": f"chatcmpl-{state.calls}",
                "object": "chat.completion",
                "created": 0,
                "model": MODEL_REPORTED,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
            drip=behaviour == "drip",
        )


@contextmanager
def serve(**settings: Any) -> Iterator[tuple[str, ServerState]]:
    """Run the server on a free port of 127.0.0.1; yields ``(base_url, state)``."""
    state = ServerState(**settings)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":  # a manual endpoint: OPENAI_BASE_URL=http://127.0.0.1:PORT/v1
    import argparse

    parser = argparse.ArgumentParser(description="local OpenAI-compatible test server")
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--behaviour", default="ok", help="e.g. collide (see the docstring)")
    args = parser.parse_args()
    with serve(fail_rate=args.fail_rate, default=args.behaviour) as (url, _state):
        print(f"OPENAI_BASE_URL={url}", flush=True)
        threading.Event().wait()
