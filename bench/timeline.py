"""Where a cold build's wall goes, and how many cores it keeps busy (timeline.md).

``make bench`` gives the cold build's wall and each model's ``execution_time``; on a 2-core
machine that does not say which of those seconds could be shorter. This study runs one cold
``dbt build`` of WordNet glosses (``--size``, 100k; vectors given, a fresh database and
target folder, as ``make bench``'s cold build) while sampling the machine's busy cores every
0.2 s (``/proc/stat``: the whole machine, so nothing else may run), then lays dbt's node
timings (``run_results.json``) over the samples: the build's phases (dbt's start-up and
parse, the nodes before the projection, the projection, the nodes after it, dbt's end and
exit), each with its wall, its mean busy cores and the core-seconds left idle; and every
model with its start, wall and the busy cores while it ran, and the tests running beside it.
A phase that keeps one of two cores busy could run twice as fast with its work split; one
that keeps both busy gets faster only with less work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from common import RESULTS, WORK, read_json, write_report
from embed import input_file
from epochs import study_head
from report import fmt, publish, secs, table
from run_ours import node_kind_and_name, run_pipeline

WORK_DIR = WORK / "timeline"
SAMPLE_SECONDS = 0.2
PROJECTION = "int_texts_projected"


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (``/proc/stat``'s first line)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


class Sampler:
    """Busy cores of the machine per interval, ``(end time, busy cores)``, on a thread."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.cores = len(os.sched_getaffinity(0))

    def _run(self) -> None:
        busy, total = _cpu_ticks()
        while not self._stop.wait(SAMPLE_SECONDS):
            now_busy, now_total = _cpu_ticks()
            share = (now_busy - busy) / max(now_total - total, 1)
            self.samples.append((time.time(), share * (os.cpu_count() or self.cores)))
            busy, total = now_busy, now_total

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> float | None:
        """Mean busy cores of the samples that ended within ``(start, end]``."""
        inside = [cores for t, cores in self.samples if start < t <= end]
        return sum(inside) / len(inside) if inside else None


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def node_times(run_results: Path) -> list[dict[str, Any]]:
    """Every node of the build with its kind, name and (start, end) in epoch seconds."""
    nodes = []
    for result in read_json(run_results)["results"]:
        timing = {t["name"]: t for t in result["timing"]}
        if "compile" not in timing or "execute" not in timing:
            continue
        kind, name = node_kind_and_name(result["unique_id"])
        nodes.append(
            {
                "kind": kind,
                "name": name,
                "start": _epoch(timing["compile"]["started_at"]),
                "end": _epoch(timing["execute"]["completed_at"]),
            }
        )
    return sorted(nodes, key=lambda n: n["start"])


def phases(
    nodes: list[dict[str, Any]], start: float, end: float, sampler: Sampler
) -> list[dict[str, Any]]:
    """The build's phases (see the module's docstring) with wall, busy cores, idle core-s."""
    first = min(n["start"] for n in nodes)
    last = max(n["end"] for n in nodes)
    projection = next((n for n in nodes if n["name"] == PROJECTION), None)
    bounds = [("dbt start-up and parse (the process's start to the first node)", start, first)]
    if projection:
        bounds += [
            ("the nodes before the projection", first, projection["start"]),
            (f"the projection ({PROJECTION})", projection["start"], projection["end"]),
            ("the nodes after the projection", projection["end"], last),
        ]
    else:
        bounds += [("the nodes", first, last)]
    bounds += [("dbt's end and exit (the last node to the process's end)", last, end)]
    rows = []
    for name, begin, finish in bounds:
        busy = sampler.between(begin, finish)
        wall = max(finish - begin, 0.0)
        rows.append(
            {
                "phase": name,
                "wall_seconds": wall,
                "busy_cores": busy,
                "idle_core_seconds": None if busy is None else wall * (sampler.cores - busy),
            }
        )
    return rows


def model_rows(nodes: list[dict[str, Any]], start: float, sampler: Sampler) -> list[dict[str, Any]]:
    """Every model: start (seconds after the process's start), wall, busy cores while it ran,
    and how many tests ran beside it."""
    tests = [n for n in nodes if n["kind"] == "test"]
    rows = []
    for node in nodes:
        if node["kind"] != "model":
            continue
        beside = sum(1 for t in tests if t["start"] < node["end"] and t["end"] > node["start"])
        rows.append(
            {
                "model": node["name"],
                "start": node["start"] - start,
                "wall_seconds": node["end"] - node["start"],
                "busy_cores": sampler.between(node["start"], node["end"]),
                "tests_beside": beside,
            }
        )
    return rows


def study(size: int) -> dict[str, Any]:
    source = input_file("wordnet", size)
    run_dir = WORK_DIR / f"wordnet-{size}"
    shutil.rmtree(run_dir, ignore_errors=True)  # a cold build: fresh database and target
    with Sampler() as sampler:
        start = time.time()
        build = run_pipeline(source, run_dir, name="cold")
        end = start + build["wall_seconds"]
    if build["returncode"] != 0:
        raise SystemExit(f"the cold build failed: see {build['log']}")
    nodes = node_times(run_dir / "target" / "run_results.json")
    return {
        "size": size,
        "cores": sampler.cores,
        "wall_seconds": build["wall_seconds"],
        "cpu_seconds": build.get("cpu_seconds"),
        "nmi": (build.get("scores") or {}).get("nmi"),
        "n_clusters": (build.get("scores") or {}).get("n_clusters"),
        "phases": phases(nodes, start, end, sampler),
        "models": model_rows(nodes, start, sampler),
        "n_tests": sum(1 for n in nodes if n["kind"] == "test"),
    }


def markdown(results: dict[str, Any]) -> str:
    lines = study_head("Where a cold build's time goes", "timeline.py", __doc__, results)
    run = results["run"]
    cpu = run.get("cpu_seconds")
    lines += [
        f"One cold `dbt build` of {run['size']} WordNet glosses (vectors given): wall "
        f"{secs(run['wall_seconds'])}, {fmt(cpu, 1)} CPU seconds (the build's process tree), "
        f"{run['n_clusters']} clusters, NMI {fmt(run['nmi'])}; {run['n_tests']} tests; "
        f"{run['cores']} cores.",
        "",
        "## Phases",
        "",
        table(
            ["phase", "wall", "busy cores (mean)", "idle core-seconds"],
            [
                [
                    p["phase"],
                    secs(p["wall_seconds"]),
                    fmt(p["busy_cores"], 2),
                    fmt(p["idle_core_seconds"], 1),
                ]
                for p in run["phases"]
            ],
        ),
        "## Models",
        "",
        "Start: seconds after the process started. Busy cores: the machine's, while the model "
        "ran (its own work, the tests beside it and dbt's).",
        "",
        table(
            ["model", "start", "wall", "busy cores", "tests beside it"],
            [
                [
                    m["model"],
                    fmt(m["start"], 1),
                    secs(m["wall_seconds"]),
                    fmt(m["busy_cores"], 2),
                    m["tests_beside"],
                ]
                for m in run["models"]
            ],
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="WordNet glosses")
    parser.add_argument("--output", type=Path, default=RESULTS / "timeline")
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    args = parser.parse_args()
    if args.render:
        write_report(args.output, read_json(args.output.with_suffix(".json")), markdown)
        return
    publish(args.output, {"run": study(args.size)}, markdown, "timeline")


if __name__ == "__main__":
    main()
