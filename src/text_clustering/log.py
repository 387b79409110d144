"""Progress and notices, on stderr, where `dbt build` shows them (prefixed text_clustering:)."""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    print(f"text_clustering: {message}", file=sys.stderr, flush=True)


def progress(verb: str, done: int, total: int, start: float) -> None:
    """``<verb> done/total texts (rate/s, ETA s)``; ``start`` is a ``time.perf_counter()``."""
    rate = done / max(time.perf_counter() - start, 1e-9)
    log(f"{verb} {done}/{total} texts ({rate:.0f}/s, ETA {(total - done) / rate:.0f}s)")
