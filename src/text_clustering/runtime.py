"""Process-wide settings of the heavy steps: their threads, and NumPy's huge pages.

The threads are set by the project (var ``n_threads``), not by luck.

torch (the torch embedding backend) and the BLAS/OpenMP pools behind NumPy (the exact kNN)
and scikit-learn each default to every core they see, which on a shared host or a container
with a CPU quota can mean oversubscription. :func:`use_threads` sets all of them to one
number per model run (the kNN runs that many workers of one BLAS thread each), BLAS with
the library's own setter (:func:`set_blas_threads`), as :func:`one_blas_thread` holds it
to one thread while bit-exact products run: threadpoolctl's limits reach OpenBLAS only from
the thread that set one first (threadpoolctl >= 3.6), and dbt runs each model on its own;
torch is
imported only by the step that needs it (:func:`import_torch`, ~1.5 s), so a build whose
texts are embedded with onnx or bring their own vectors does not load it.
:func:`avoid_hugepage_stalls` keeps NumPy's large arrays off transparent huge pages where
the kernel would stall on them;
:func:`freeze_collector` keeps Python's cycle collector from rescanning what dbt loaded.
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .log import log

THP = Path("/sys/kernel/mm/transparent_hugepage")
# THP "defrag" settings under which a fault in a region madvised for huge pages may stall on
# synchronous memory compaction (the kernel's documentation of transparent_hugepage/defrag)
STALLING_DEFRAG = ("always", "madvise", "defer+madvise")

# 0: never freeze Python's cycle collector, 1: in any process (freeze_collector)
GC_FREEZE_VARIABLE = "TEXT_CLUSTERING_GC_FREEZE"

_threads: int | None = None  # the last use_threads() value, applied to torch on import


def use_threads(n_threads: int | None) -> int:
    """Use ``n_threads`` threads (None: all cores this process may run on); returns it."""
    global _threads
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    n = n_threads or available or os.cpu_count() or 1
    from threadpoolctl import threadpool_limits

    set_blas_threads(n)  # threadpoolctl's limits reach OpenBLAS from one thread only
    threadpool_limits(limits=n, user_api="openmp")
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


def avoid_hugepage_stalls(thp: Path = THP) -> bool:
    """Stop NumPy from madvising its large arrays for transparent huge pages where the kernel
    then compacts memory synchronously at the first touch (THP ``defrag`` set to ``always``,
    ``madvise`` or ``defer+madvise``; numpy/numpy#31590). On the 2-core machines the project
    is measured on, a fresh 150 MB array then took up to 0.66 s instead of 0.06-0.16 s, and
    the 100k cold build 1.6 s (3 %) more on average (docs/performance.md). An explicit
    ``NUMPY_MADVISE_HUGEPAGE`` in the environment is left to decide. Returns whether
    NumPy's setting was turned off."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    enabled, defrag = _selected(thp / "enabled"), _selected(thp / "defrag")
    if enabled in (None, "never") or defrag not in STALLING_DEFRAG:
        return False
    # NumPy >= 1.26 (pyproject's bound) has it; its type stubs do not list it
    from numpy._core.multiarray import _set_madvise_hugepage  # type: ignore[attr-defined]

    _set_madvise_hugepage(False)
    log(
        f"NumPy's huge pages off (THP defrag '{defrag}' can stall on memory compaction; "
        "NUMPY_MADVISE_HUGEPAGE=1 keeps them)"
    )
    return True


def freeze_collector() -> bool:
    """In a ``dbt`` command's process, move every object alive now out of the cycle
    collector's reach (``gc.freeze``), and again at exit. Run when the first model of a
    ``dbt build`` imports the steps: the objects then alive (dbt's parsed project, the
    imported libraries) live until the process ends, yet each full collection traversed all
    of them again, and so did the collections of the interpreter's shutdown. By hand on the
    bench's 100k input: the process ended 1.5-2.2 s after dbt's last log line, 0.3-0.4 s
    with this; three pairs of cold builds 2.1 s faster on average, of unchanged rebuilds
    ~2.2 s faster each (docs/performance.md). Objects made later are collected as before.

    Only in the process of dbt's command line (``dbt build``, ``dbt run``, ...), which ends
    with the build; a long-lived process that imports the library (a notebook, an
    orchestrator calling dbt in-process) is left alone: there, what is frozen could never
    be collected once it becomes garbage. ``TEXT_CLUSTERING_GC_FREEZE=1`` freezes in any
    process, ``0`` never. Returns whether it froze.

    What is garbage at exit is then never freed; when that holds a DuckDB object, DuckDB
    does not move its write-ahead log into the database file on closing, so the build's
    on-run-end hook checkpoints before (macros/checkpoint.sql)."""
    choice = os.environ.get(GC_FREEZE_VARIABLE, "").strip()
    if choice == "0":
        return False
    if choice != "1" and not _is_dbt_command():
        return False
    gc.freeze()
    atexit.register(gc.freeze)  # the interpreter's last collections then skip everything
    log(
        f"{gc.get_freeze_count()} Python objects loaded before the first model kept out of "
        f"the cycle collector's scans ({GC_FREEZE_VARIABLE}=0 leaves them in)"
    )
    return True


def _is_dbt_command() -> bool:
    """This process is dbt's command line (its ``dbt`` script), not a program using dbt."""
    return "dbt.cli.main" in sys.modules and Path(sys.argv[0] if sys.argv else "").name == "dbt"


def _selected(path: Path) -> str | None:
    """The bracketed choice of a sysfs setting (``always [madvise] never`` -> ``madvise``);
    None when the file cannot be read (not Linux, no THP)."""
    try:
        found = re.search(r"\[([^\]]+)\]", path.read_text())
    except OSError:
        return None
    return found.group(1) if found else None


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0  # callers inside one_blas_thread, from any thread
_BLAS_SAVED: dict[str, tuple[Any, int]] = {}  # library path -> (controller, its threads)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Every BLAS library loaded (NumPy's, SciPy's) on one thread while any caller, from any
    thread, is inside; the last to leave restores each library's thread count. Re-entrant
    and shared, so that concurrent callers never restore a count under another's products:
    a product's bits depend on the threads it ran on, and the kNN must not."""
    global _BLAS_USERS
    with _BLAS_LOCK:
        for library in _blas_libraries():
            if library.filepath not in _BLAS_SAVED:  # also one loaded since the first entry
                _BLAS_SAVED[library.filepath] = (library, library.get_num_threads())
                _set_threads(library, 1)
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                for library, threads in _BLAS_SAVED.values():
                    _set_threads(library, threads)
                _BLAS_SAVED.clear()


def set_blas_threads(threads: int) -> None:
    """Every BLAS library loaded to ``threads`` threads, from any thread (threadpoolctl's
    limits reach OpenBLAS only from the thread that set one first, and dbt runs each model
    on its own). Inside a :func:`one_blas_thread` section (any caller's) the libraries stay
    on one thread and get ``threads`` when the last caller leaves it."""
    with _BLAS_LOCK:
        for library in _blas_libraries():
            if library.filepath in _BLAS_SAVED:
                _BLAS_SAVED[library.filepath] = (library, threads)
            else:
                _set_threads(library, threads)


def _blas_libraries() -> list[Any]:
    from threadpoolctl import ThreadpoolController

    return list(ThreadpoolController().select(user_api="blas").lib_controllers)


def _set_threads(library: Any, threads: int) -> None:
    # threadpoolctl's own setter for OpenBLAS acts only in the thread that first set a limit
    getattr(library, "_real_set_num_threads", library.set_num_threads)(threads)
