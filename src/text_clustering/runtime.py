"""The threads the heavy steps use: set by the project (var ``n_threads``), not by luck.

torch (embedding, exact kNN) and the BLAS/OpenMP pools behind NumPy and scikit-learn each
default to every core they see, which on a shared host or a container with a CPU quota can
mean oversubscription. :func:`use_threads` sets all of them to one number per model run;
torch is imported only by the steps that need it (:func:`import_torch`, ~1.5 s), so a
rebuild with nothing to embed or project does not load it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .log import log

_threads: int | None = None  # the last use_threads() value, applied to torch on import


def use_threads(n_threads: int | None) -> int:
    """Use ``n_threads`` threads (None: all cores this process may run on); returns it."""
    global _threads
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    n = n_threads or available or os.cpu_count() or 1
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    _threads = n
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    log(f"using {n} thread(s) for embedding and nearest-neighbour search (var n_threads)")
    return n


def threads_in_use() -> int:
    """The threads of the last :func:`use_threads` call (else all cores this process may
    run on)."""
    if _threads is not None:
        return _threads
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return available or os.cpu_count() or 1


def import_torch() -> Any:
    """``torch``, with the thread count of the last :func:`use_threads` call applied."""
    import torch

    if _threads is not None:
        torch.set_num_threads(_threads)
    return torch
