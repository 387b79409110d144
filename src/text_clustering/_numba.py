"""Make umap-learn's numba JIT compile once per machine instead of once per process.

umap-learn and pynndescent compile ~20-30 s of numba code in every new process, and much of it
is declared without ``cache=True`` (some of it even compiled inside functions at call time),
so ``NUMBA_CACHE_DIR`` alone does not help. :func:`cached_jit` defaults ``cache=True`` on
``numba.njit`` / ``numba.jit`` while umap is imported and fitted, so every compiled function
lands in the persistent cache and the next process loads it (seconds instead of ~30 s).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

_lock = threading.Lock()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "text_clustering" / "numba"


def configure_numba_cache() -> str:
    """Set ``NUMBA_CACHE_DIR`` if unset (must run before numba is first imported)."""
    path = os.environ.setdefault("NUMBA_CACHE_DIR", str(default_cache_dir()))
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def cached_jit() -> Iterator[None]:
    """Within the block, ``numba.njit`` and ``numba.jit`` default to ``cache=True``."""
    configure_numba_cache()
    import numba

    with _lock:
        njit, jit = numba.njit, numba.jit

        def cached_njit(*args, **kwargs):
            kwargs.setdefault("cache", True)
            return njit(*args, **kwargs)

        def cached_jit_(*args, **kwargs):
            kwargs.setdefault("cache", True)
            return jit(*args, **kwargs)

        numba.njit, numba.jit = cached_njit, cached_jit_
        try:
            yield
        finally:
            numba.njit, numba.jit = njit, jit
