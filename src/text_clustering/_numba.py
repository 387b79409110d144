"""Give numba a persistent JIT cache before umap-learn / pynndescent import it.

umap-learn compiles ~20-100 s of numba code per cold process. With a cache directory that
survives between builds, only the first build pays. ``NUMBA_CACHE_DIR`` set by the user wins.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "text_clustering" / "numba"


def configure_numba_cache() -> str:
    """Set ``NUMBA_CACHE_DIR`` if unset (must run before numba is first imported)."""
    path = os.environ.setdefault("NUMBA_CACHE_DIR", str(default_cache_dir()))
    Path(path).mkdir(parents=True, exist_ok=True)
    return path
