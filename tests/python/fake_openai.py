"""A local OpenAI-compatible HTTP server for tests: real HTTP on 127.0.0.1, no canned answers.

``POST /v1/chat/completions`` reads the numbered examples in the prompt and answers with labels
built from them (the most frequent long word of the examples), so a test can tell which texts
reached which cluster. It honours ``response_format`` (or rejects it when told to), counts
calls, and can play failure scenarios.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_REPORTED = "fake-llm-1"


@dataclass
class ServerState:
    """What the server has seen, and how it should misbehave."""

    calls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    reject_response_format: bool = False
    malformed: bool = False
    status: int | None = None  # answer every call with this HTTP status
    lock: threading.Lock = field(default_factory=threading.Lock)


def label_from_prompt(prompt: str) -> tuple[list[str], int]:
    """The labels a well-behaved LLM would give: built from the prompt's numbered examples."""
    n_match = re.search(r"exactly (\d+) distinct label", prompt)
    n = int(n_match.group(1)) if n_match else 1
    examples = re.findall(r"^\d+\. (.*)$", prompt, flags=re.MULTILINE)
    words = Counter(
        w.lower() for text in examples for w in re.findall(r"[A-Za-z]{5,}", text)
    ).most_common()
    ranked = [w for w, _ in words] or ["nothing"]
    labels = [f"{ranked[i % len(ranked)]} texts" for i in range(n)]
    return labels, n


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        state = self.state
        with state.lock:
            state.calls += 1
            state.requests.append(body)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
        if not self.path.endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        if state.status is not None:
            self._send(state.status, {"error": {"message": f"scripted {state.status}"}})
            return
        if "response_format" in body and state.reject_response_format:
            self._send(400, {"error": {"message": "response_format is not supported"}})
            return
        prompt = body["messages"][-1]["content"]
        labels, _ = label_from_prompt(prompt)
        content = "this is not json" if state.malformed else json.dumps({"labels": labels})
        if "response_format" not in body and not state.malformed:
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
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )


@contextmanager
def serve() -> Iterator[tuple[str, ServerState]]:
    """Run the server on a free port of 127.0.0.1; yields ``(base_url, state)``."""
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()
