"""The threads the heavy steps use: set by the project (var ``n_threads``), not by luck.

torch (embedding, exact kNN) and the BLAS/OpenMP pools behind NumPy and scikit-learn each
default to every core they see, which on a shared host or a container with a CPU quota can
mean oversubscription. :func:`use_threads` sets all of them to one number per model run.
"""

from __future__ import annotations

import os

from .log import log


def use_threads(n_threads: int | None) -> int:
    """Use ``n_threads`` threads (None: all cores this process may run on); returns it."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    n = n_threads or available or os.cpu_count() or 1
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    log(f"using {n} thread(s) for embedding and nearest-neighbour search (var n_threads)")
    return n
