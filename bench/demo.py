"""The README's first command on a fresh clone: `make demo`, install included, timed.

Clones this repo (its committed HEAD) into a temporary folder and runs `make setup` (the
venv: torch, the requirements, the package, the ONNX export) then `make demo` (the build on
the demo's 2,914 texts, cold: no embedding, numba or dbt cache), each timed, and writes
bench/results/demo.{md,json} (`make bench-demo`, run by `make bench`). Pip resolves packages
the way this machine is configured to (its pip.conf: a local wheel folder and index before
PyPI), which the report records: a machine that downloads every wheel takes longer.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULTS, load_average
from report import machine_markdown, publish

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 240
# what the calling `make bench` exports would hand the clone's make (warm caches, this venv)
INHERITED = (
    "NUMBA_CACHE_DIR",
    "TEXT_CLUSTERING_ONNX_DIR",
    "DBT_PROFILES_DIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
)


def timed(command: list[str], cwd: Path, log_path: Path) -> float:
    """Seconds ``command`` took in ``cwd``; its output to ``log_path``; fails loudly."""
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    start = time.perf_counter()
    with log_path.open("w") as out:
        done = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): see {log_path}")
    return time.perf_counter() - start


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        clone = Path(tmp) / "text_clustering"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip()
        before = load_average()
        setup = timed(["make", "setup"], clone, Path(tmp) / "setup.log")
        demo = timed(["make", "demo"], clone, Path(tmp) / "demo.log")
        after = load_average()
        built = what_it_built(clone / "output" / "text_clustering.duckdb")
    places = (Path.home() / ".config/pip/pip.conf", Path("/etc/pip.conf"))
    pip_conf = [p for p in places if p.exists()]
    return {
        "commit": commit,
        "setup_s": round(setup, 1),
        "demo_s": round(demo, 1),
        "total_s": round(setup + demo, 1),
        "target_s": TARGET_SECONDS,
        "load_before": before,
        "load_after": after,
        "pip_conf": {str(p): p.read_text() for p in pip_conf},
        "built": built,
    }


def what_it_built(database: Path) -> dict[str, Any]:
    """Clusters, noise and the topics per level of the demo's build (what the README's
    pictures show), read from its database."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        clusters, noise, texts = con.sql(
            "select count(*) filter (where not is_noise), "
            "coalesce(sum(n_texts) filter (where is_noise), 0), sum(n_texts) from dim_clusters"
        ).fetchall()[0]
        levels = con.sql(
            "select level, count(*) filter (where not is_noise), bool_or(is_headline_level) "
            "from dim_topics group by level order by level"
        ).fetchall()
    finally:
        con.close()
    return {
        "texts": int(texts),
        "clusters": int(clusters),
        "noise_texts": int(noise),
        "topics_per_level": [int(n) for _, n, _ in levels],
        "headline_level": next((int(level) for level, _, head in levels if head), None),
    }


def markdown(r: dict[str, Any]) -> str:
    met = "yes" if r["total_s"] <= r["target_s"] else "no"
    lines = [
        "# `make demo` on a fresh clone",
        "",
        f"Made by `bench/demo.py` (`make bench-demo`), finished {r['finished']}: a clone of "
        f"{r['commit']} in a temporary folder, `make setup` then `make demo` (2,914 texts, "
        "everything cold: venv, ONNX export, numba cache, embedding cache, dbt target).",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| `make setup` (venv, torch, requirements, package, ONNX export) | {r['setup_s']} |",
        f"| `make demo` (`dbt build` + summary) | {r['demo_s']} |",
        f"| total | {r['total_s']} |",
        "",
        f"Target: <= {r['target_s']} s in all: met: {met}. Load average (1, 5, 15 min) "
        f"before: {r['load_before']}; after: {r['load_after']}.",
        "",
    ]
    built = r.get("built")
    if built:
        levels = " / ".join(str(n) for n in built["topics_per_level"])
        lines += [
            f"What the build gave: {built['texts']:,} texts, {built['clusters']} clusters, "
            f"{built['noise_texts']} texts in noise; topics per level (level 0 = the "
            f"clusters) {levels}, headline level {built['headline_level']} "
            f"({built['topics_per_level'][built['headline_level']]} topics).",
            "",
        ]
    lines += [
        "Pip's configuration on this machine (where the wheels come from):",
        "",
    ]
    for path, text in r["pip_conf"].items() or {"(none)": ""}.items():
        lines += [f"`{path}`:", "", "```", text.strip(), "```", ""]
    return "\n".join(lines) + "\n" + machine_markdown(r["machine"], None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=RESULTS / "demo")
    args = parser.parse_args()
    results = run()
    publish(args.output, results, markdown, "demo")


if __name__ == "__main__":
    main()
