"""Make umap-learn's numba JIT compile once per machine instead of once per process.

umap-learn and pynndescent compile ~20-30 s of numba code in every new process, and much of it
is declared without ``cache=True`` (some of it even compiled inside functions at call time),
so ``NUMBA_CACHE_DIR`` alone does not help. :func:`cached_jit` defaults ``cache=True`` on
``numba.njit`` / ``numba.jit`` while umap is imported and fitted, so every compiled function
lands in the persistent cache and the next process loads it (seconds instead of ~30 s).
It also defaults ``nogil=True``: the projection step searches neighbours on another thread
while UMAP lays out its fit, and with the GIL held by each layout epoch that search ran
3.4x slower. numba does not key its cache on such flags, so the code is cached in a
subfolder named by them (``CACHE_FORMAT``): code cached before is never loaded.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_lock = threading.Lock()
CACHE_FORMAT = "nogil-v1"  # the flags cached_jit adds; a new name when they change


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
    """Within the block, ``numba.njit`` and ``numba.jit`` default to ``cache=True`` and
    ``nogil=True``, cached under ``$NUMBA_CACHE_DIR/CACHE_FORMAT``."""
    configure_numba_cache()
    import numba
    from numba.core import config as numba_config

    config: Any = numba_config  # keeps NUMBA_CACHE_DIR as CACHE_DIR (set at run time)

    with _lock:
        njit, jit, cache_dir = numba.njit, numba.jit, config.CACHE_DIR

        def cached_njit(*args, **kwargs):
            kwargs.setdefault("cache", True)
            kwargs.setdefault("nogil", True)
            return njit(*args, **kwargs)

        def cached_jit_(*args, **kwargs):
            kwargs.setdefault("cache", True)
            kwargs.setdefault("nogil", True)
            return jit(*args, **kwargs)

        numba.njit, numba.jit = cached_njit, cached_jit_
        if cache_dir:  # numba reads it when a function is decorated
            config.CACHE_DIR = os.path.join(cache_dir, CACHE_FORMAT)
        try:
            yield
        finally:
            numba.njit, numba.jit, config.CACHE_DIR = njit, jit, cache_dir
