"""The Spark path measured (``make bench`` runs it after ``bench.py``).

Writes bench/results/spark.{md,json}.

Every run is ``python -m text_clustering spark`` (the driver, monitored for its peak RSS) on
a standalone cluster started here on 127.0.0.1 (:func:`text_clustering.spark.local_cluster`:
a master and 1 or 2 workers of 1 core and 2 GB each, separate processes); what ran where
comes from Spark's status API (the command's ``_run.json``).

Parts (``--parts``, all by default):

- ``embed``: 1,000 Debian descriptions (``data/debian_packages.parquet``) embedded through
  the Spark map (default model, onnx backend), on 1 worker and then 2 workers; per-task
  rate = texts / executor run time of the embed job.
- ``place``: the first 100k texts of the bench's synthetic corpus (vectors given, var
  ``embedding_column``), default ``max_fit_rows`` (30k): the driver's fit, then the
  placement map of the other 70k, on 1 worker and on 2 workers.
- ``million``: the bench's 1M synthetic texts with vectors, 2 workers: stage walls, the
  placement rate, the executors' peak memory (status API) and the driver's peak RSS.

The machine is shared: its load (``uptime``) is recorded before and after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from common import (
    DATA,
    OUR_PYTHON,
    RESULTS,
    ROOT,
    WORK,
    load_average,
    log,
    run_monitored,
    write_report,
)
from corpora import write_synthetic
from report import machine, machine_markdown

sys.path.insert(0, str(ROOT / "src"))
from text_clustering.spark import local_cluster

WORK_DIR = WORK / "spark"
PARTS = ("embed", "place", "million")
MILLION = 1_000_000


def run_spark(workers: int, source: Path, name: str, *args: str) -> dict[str, Any]:
    """One run of the command on a fresh cluster of ``workers`` workers."""
    output = WORK_DIR / name
    shutil.rmtree(output, ignore_errors=True)
    env = {
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONPATH": str(ROOT / "src"),
        "TEXT_CLUSTERING_ONNX_DIR": os.environ.get(
            "TEXT_CLUSTERING_ONNX_DIR", str(ROOT / ".cache" / "onnx")
        ),
    }
    os.environ.update(env)  # the workers' executors inherit it
    before = load_average()
    with local_cluster(workers, cores=1, memory="2g", timeout=120) as cluster:
        command = [str(OUR_PYTHON), "-m", "text_clustering", "spark", "--master", cluster.url]
        command += ["--output", str(output), "--source-path", str(source), *args]
        log(f"spark bench {name}: {workers} worker(s)")
        run = run_monitored(command, env=env, log_path=WORK_DIR / f"{name}.log")
    if run.returncode != 0:
        raise SystemExit(f"spark run {name} failed; see {run.log_path}")
    done = json.loads((output / "_run.json").read_text())
    jobs = {j["description"]: j for j in done["jobs"]}
    executors = [e for e in done["executors"] if e["id"] != "driver"]
    return {
        "name": name,
        "workers": workers,
        "wall_s": round(run.wall_seconds, 1),
        "driver_peak_rss": run.peak_rss_bytes,
        "load_before": before,
        "load_after": load_average(),
        "n_texts": done["n_texts"],
        "n_fit": done["n_fit"],
        "n_clusters": done["n_clusters"],
        "stage_s": done["seconds"],
        "jobs": jobs,
        "executors": executors,
        "spark_version": done["spark_version"],
    }


def per_task_rate(run: dict[str, Any], job: str, rows: int) -> float | None:
    found = run["jobs"].get(job)
    if not found or not found["task_seconds"]:
        return None
    return round(rows / found["task_seconds"], 1)


def part_embed() -> list[dict[str, Any]]:
    source = WORK_DIR / "debian-1000.parquet"
    source.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pq.read_table(ROOT / "data" / "debian_packages.parquet").slice(0, 1000), source)
    runs = []
    for workers in (1, 2):
        run = run_spark(workers, source, f"embed-{workers}w", "--partitions", "4")
        run["embed_rate_per_task"] = per_task_rate(run, "embed", 1000)
        run["place_rate_per_task"] = per_task_rate(run, "place", run["n_texts"] - run["n_fit"])
        runs.append(run)
    return runs


def synthetic(n: int) -> Path:
    full = DATA / f"synthetic-{MILLION}.parquet"
    if not full.exists():
        log(f"writing {MILLION} synthetic texts to {full}")
        write_synthetic(full, MILLION)
    if n == MILLION:
        return full
    part = WORK_DIR / f"synthetic-{n}.parquet"
    if not part.exists():
        part.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pq.read_table(full).slice(0, n), part)
    return part


def part_place(n: int = 100_000) -> list[dict[str, Any]]:
    runs = []
    for workers in (1, 2):
        args = ("--embedding-column", "embedding", "--id-column", "id", "--partitions", "8")
        run = run_spark(workers, synthetic(n), f"place-{n}-{workers}w", *args)
        run["place_rate_per_task"] = per_task_rate(run, "place", n - run["n_fit"])
        runs.append(run)
    return runs


def part_million() -> list[dict[str, Any]]:
    args = ("--embedding-column", "embedding", "--id-column", "id", "--partitions", "16")
    run = run_spark(2, synthetic(MILLION), "million-2w", *args)
    run["place_rate_per_task"] = per_task_rate(run, "place", MILLION - run["n_fit"])
    return [run]


def gb(value: Any) -> str:
    return "-" if not value else f"{value / 1e9:.2f} GB"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# The Spark path (`python -m text_clustering spark`)",
        "",
        "Written by `bench/spark.py` (`make bench`). A standalone Spark cluster on this one",
        "machine: a master and 1 or 2 workers of **1 core and 2 GB each** (separate processes on",
        "127.0.0.1), the driver in the command's process. Rates per task are texts / executor run",
        "time of that job's tasks (Spark's status API), i.e. per core. The machine is shared",
        "with other engineers' jobs: its load average (1, 5, 15 min) is given per run.",
        "",
        "| run | workers | texts | fitted | wall | read | embed | fit (driver) | place | label "
        "| marts | embed /task/s | place /task/s | load before -> after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for part in PARTS:
        for r in results.get(part, []):
            s = r["stage_s"]
            lines.append(
                f"| {r['name']} | {r['workers']} | {r['n_texts']} | {r['n_fit']} "
                f"| {r['wall_s']} s "
                f"| {s.get('read')} | {s.get('embed')} | {s.get('fit')} | {s.get('place')} "
                f"| {s.get('label')} | {s.get('marts')} | {r.get('embed_rate_per_task') or '-'} "
                f"| {r.get('place_rate_per_task') or '-'} "
                f"| {r['load_before']} -> {r['load_after']} |"
            )
    lines += ["", "Stage times are seconds of wall time in the driver.", "", "## Memory", ""]
    lines += [
        "| run | driver peak RSS | executor | tasks | peak JVM heap | peak JVM RSS "
        "| peak Python RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for part in PARTS:
        for r in results.get(part, []):
            for e in r["executors"]:
                lines.append(
                    f"| {r['name']} | {gb(r['driver_peak_rss'])} | {e['id']} | {e['total_tasks']} "
                    f"| {gb(e['peak_jvm_heap'])} | {gb(e['peak_jvm_rss'])} "
                    f"| {gb(e['peak_python_rss'])} |"
                )
    lines += ["", machine_markdown(results["machine"], None)]
    lines.append(f"- Spark {results.get('spark_version')} (pyspark from PyPI), OpenJDK 17")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    args = parser.parse_args()
    stem = RESULTS / "spark"
    results: dict[str, Any] = {"machine": machine()}
    if stem.with_suffix(".json").exists():
        kept = json.loads(stem.with_suffix(".json").read_text())
        results.update({k: v for k, v in kept.items() if k in PARTS})
    runners = {"embed": part_embed, "place": part_place, "million": part_million}
    for part in args.parts:
        started = time.perf_counter()
        results[part] = runners[part]()
        results["spark_version"] = results[part][0]["spark_version"]
        write_report(stem, results, markdown)
        log(f"spark bench part {part} done in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
