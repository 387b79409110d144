"""Paths, JSON helpers and a process-tree monitor shared by the bench scripts.

Standard library only: ``run_bertopic.py`` imports it inside the BERTopic venv too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the repository
BENCH = ROOT / "bench"
DATA = BENCH / "data"  # corpora, embeddings, inputs (gitignored)
WORK = BENCH / "work"  # per-run DuckDB files, dbt target dirs, JSON of single runs (gitignored)
RESULTS = BENCH / "results"  # the committed reports
# The pipeline's venv: the repo's .venv, or another one's python given as OUR_PYTHON (the
# Makefile passes $(BIN)/python, so `make eval VENV=...` runs dbt from that venv).
OUR_PYTHON = Path(os.environ.get("OUR_PYTHON") or ROOT / ".venv" / "bin" / "python")
BERTOPIC_PYTHON = BENCH / ".venv-bertopic" / "bin" / "python"
TOPONYMY_PYTHON = BENCH / ".venv-toponymy" / "bin" / "python"
POLL_SECONDS = 0.1

# Every process started by the harness runs offline, like the Makefile's.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "TOKENIZERS_PARALLELISM": "false",
}


def load_average() -> str:
    """The machine's load average over 1, 5 and 15 minutes, e.g. ``"4.26 5.32 5.21"``: the
    reports give it beside every timing (the machine may be shared)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def log(message: str) -> None:
    """One line on stderr with a wall-clock time stamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_report(stem: Path, results: Any, markdown: Any) -> None:
    """A report's two files: ``stem.json`` (the results) and ``stem.md`` (``markdown(results)``)."""
    write_json(stem.with_suffix(".json"), results)
    stem.with_suffix(".md").write_text(markdown(results))


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (replacing the file whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and all its descendants, summed (Linux ``/proc``)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _rss_bytes(current)
        stack.extend(_children(current))
    return total


@dataclass
class Monitored:
    """What :func:`run_monitored` measured."""

    returncode: int
    wall_seconds: float
    peak_rss_bytes: int
    log_path: str
    # user + system CPU seconds of the process and the children it waited for: about
    # wall_seconds when one core is busy, twice that when both of this machine's are
    cpu_seconds: float


def run_monitored(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    log_path: Path,
) -> Monitored:
    """Run ``cmd`` (stdout and stderr to ``log_path``), polling the RSS of its whole process
    tree every 0.1 s; return exit code, wall seconds, the peak tree RSS in bytes and the CPU
    seconds it used (``os.wait4``'s resource usage of the child)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **OFFLINE_ENV, **(env or {})}
    peak = 0
    with log_path.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=full_env, stdout=out, stderr=out)
        done = threading.Event()

        def poll() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss_bytes(proc.pid))
                done.wait(POLL_SECONDS)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = returncode = os.waitstatus_to_exitcode(status)
        done.set()
        poller.join()
    cpu = usage.ru_utime + usage.ru_stime
    return Monitored(returncode, wall, peak, str(log_path), cpu)


def tail(path: str | Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (for error messages)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run_venv_script(
    label: str, python: Path, script: str, source: Path, run_dir: Path, name: str, env: dict
) -> dict[str, Any]:
    """Run ``script`` (in ``BENCH``) with a venv's ``python`` on ``source``, measured like
    ours: wall of the subprocess, peak RSS of its tree; plus the JSON the script wrote (or
    ``error``: the end of its log)."""
    output = run_dir / f"{name}.json"
    output.unlink(missing_ok=True)
    cmd = [str(python), str(BENCH / script), "--input", str(source)]
    log(f"{label} on {source.name} -> {run_dir}")
    measured = run_monitored(
        [*cmd, "--output", str(output)], env=env, log_path=run_dir / f"{name}.log"
    )
    result: dict[str, Any] = {
        "returncode": measured.returncode,
        "wall_seconds": measured.wall_seconds,
        "peak_rss_bytes": measured.peak_rss_bytes,
        "log": measured.log_path,
    }
    if measured.returncode != 0 or not output.exists():
        result["error"] = tail(measured.log_path)
        log(f"{label} failed (exit {measured.returncode}); see {measured.log_path}")
        return result
    result.update(read_json(output))
    return result


def run_bertopic(source: Path, run_dir: Path, *, name: str = "bertopic") -> dict[str, Any]:
    """Fit BERTopic (``run_bertopic.py`` in its own venv) on ``source``: stage seconds,
    topics per text, versions (see :func:`_run_venv_script`)."""
    env = {"NUMBA_CACHE_DIR": str(BENCH / ".venv-bertopic" / "numba-cache")}
    result = _run_venv_script(
        "BERTopic", BERTOPIC_PYTHON, "run_bertopic.py", source, run_dir, name, env
    )
    if "error" not in result:
        log(
            f"BERTopic: fit_transform {result['seconds']['fit_transform']:.1f}s, "
            f"peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB"
        )
    return result


def run_toponymy(npz: Path, run_dir: Path, *, name: str = "toponymy") -> dict[str, Any]:
    """Fit Toponymy's ``ToponymyClusterer()`` (``run_toponymy.py`` in its own venv) on the
    ``points`` and ``vectors`` of ``npz``: every layer's labels, fit seconds, versions (see
    :func:`_run_venv_script`)."""
    env = {
        "NUMBA_CACHE_DIR": str(BENCH / ".venv-toponymy" / "numba-cache"),
        # toponymy imports litellm, which otherwise fetches its model price list online
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    result = _run_venv_script(
        "Toponymy", TOPONYMY_PYTHON, "run_toponymy.py", npz, run_dir, name, env
    )
    if "error" not in result:
        log(
            f"Toponymy: fit {result['fit_seconds']:.1f}s, {len(result['layers'])} layers, "
            f"peak RSS {result['peak_rss_bytes'] / 1e9:.2f} GB"
        )
    return result
