"""What an unchanged rebuild costs dbt alone (dbt_floor.md, ``make bench-floor``).

The rebuild targets of ``make bench`` (an unchanged rebuild, and one with 1 % new texts, in
at most 10 % of the 100k cold build) are missed. How much of an unchanged rebuild is dbt's
own cost per node, and how much the pipeline's work? This study takes the manifest of our
build of WordNet glosses (``--size``, 100k; vectors given) and writes *twins* of it: dbt
projects with the same nodes and edges (every model, seed and test; the models' language) in
which every model is ``select 1 as x`` materialized as a table and every test selects
nothing, on their own DuckDB file. Then, in alternating rounds on the same minutes of the
machine: a cold build of ours on a fresh database (the target's yardstick), our unchanged
``dbt build`` (as ``make bench`` runs it), and an unchanged ``dbt build`` of each twin: the
full twin (all nodes), the twin without tests, the twin with one test per model instead of
one per column, and a twin of one model (dbt's start-up, parse and exit). Our build is also
run with ``--threads 2`` and ``--threads 8`` (the profile has 4; the machine 2 cores) and
without its tests (``--exclude-resource-type test unit_test``). Wall per build (dbt start-up
included), dbt's ``elapsed_time`` of the nodes, the CPU seconds of the build (user + system:
how many of the machine's two cores it kept busy), the median per variant, and the medians of
its ratios to our rebuild and to the cold build of the same round (the target: <= 0.10).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    OUR_PYTHON,
    RESULTS,
    WORK,
    load_average,
    log,
    read_json,
    run_monitored,
    write_report,
)
from embed import input_file
from epochs import study_head
from report import fmt, machine, secs, table
from run_ours import run_pipeline, run_results

DBT = OUR_PYTHON.parent / "dbt"
WORK_DIR = WORK / "floor"
TARGET = 0.10  # the rebuild targets: <= 10 % of the cold wall
# twin name -> (keep tests: "all" | "none" | "one_per_model", keep only one model)
TWINS = {
    "twin": ("all", False),
    "twin_one_test_per_model": ("one_per_model", False),
    "twin_no_tests": ("none", False),
    "twin_one_model": ("none", True),
}


def write_twin(manifest: dict[str, Any], folder: Path, tests: str, one_model: bool) -> dict:
    """A dbt project in ``folder`` with the nodes and edges of ``manifest`` (models, seeds,
    tests as kept by ``tests``), each model ``select 1 as x`` (table), each test empty.
    Returns the count of nodes per kind."""
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("models", "seeds", "tests"):
        (folder / sub).mkdir(parents=True)
    nodes = manifest["nodes"]
    names = {key: node["name"] for key, node in nodes.items()}
    models = [n for n in nodes.values() if n["resource_type"] == "model"]
    if one_model:
        models = [{**models[0], "depends_on": {"nodes": []}}]
    kept = {m["name"] for m in models}
    counts = {"models": len(models), "seeds": 0, "tests": 0}
    for model in models:
        parents = [names[d] for d in model["depends_on"]["nodes"] if d in names]
        if model["language"] == "python":
            edges = "".join(f'    dbt.ref("{p}")\n' for p in parents)
            body = 'def model(dbt, session):\n    dbt.config(materialized="table")\n'
            body += edges + '    return session.sql("select 1 as x")\n'
            (folder / "models" / f"{model['name']}.py").write_text(body)
        else:
            edges = "".join(f"-- {{{{ ref('{p}') }}}}\n" for p in parents)
            body = "{{ config(materialized='table') }}\n" + edges + "select 1 as x\n"
            (folder / "models" / f"{model['name']}.sql").write_text(body)
    if not one_model:
        for node in nodes.values():
            if node["resource_type"] == "seed":
                (folder / "seeds" / f"{node['name']}.csv").write_text("a,b\n1,2\n")
                counts["seeds"] += 1
    tested: set[str] = set()
    for key, node in nodes.items():
        if node["resource_type"] != "test" or tests == "none":
            continue
        parents = [names[d] for d in node["depends_on"]["nodes"] if names.get(d) in kept]
        if not parents or (tests == "one_per_model" and parents[0] in tested):
            continue
        tested.add(parents[0])
        edges = "".join(f"-- {{{{ ref('{p}') }}}}\n" for p in parents[1:])
        sql = edges + f"select * from {{{{ ref('{parents[0]}') }}}} where false\n"
        (folder / "tests" / f"{key.replace('.', '_')}.sql").write_text(sql)
        counts["tests"] += 1
    (folder / "dbt_project.yml").write_text(
        "name: twin\nversion: '0.1.0'\nconfig-version: 2\nprofile: twin\n"
        "flags:\n  send_anonymous_usage_stats: false\n"
    )
    (folder / "profiles.yml").write_text(
        "twin:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {folder / 'twin.duckdb'}\n      threads: 4\n"
    )
    return counts


def build_twin(folder: Path, name: str) -> dict[str, Any]:
    """One ``dbt build`` of the twin in ``folder``: wall, dbt's elapsed time, nodes."""
    target = folder / "target"
    (target / "run_results.json").unlink(missing_ok=True)
    measured = run_monitored(
        [str(DBT), "build"],
        env={"DBT_PROFILES_DIR": str(folder)},
        cwd=folder,
        log_path=folder / f"{name}.log",
    )
    if measured.returncode != 0:
        raise SystemExit(f"twin build in {folder} failed: see {measured.log_path}")
    results = run_results(target / "run_results.json")
    return {
        "wall_seconds": measured.wall_seconds,
        "cpu_seconds": measured.cpu_seconds,
        "elapsed": results["elapsed"],
        "nodes": results["nodes"],
    }


def ours(source: Path, run_dir: Path, name: str, dbt_args: Sequence[str] = ()) -> dict[str, Any]:
    run = run_pipeline(source, run_dir, name=name, dbt_args=dbt_args)
    if run.get("error"):
        raise SystemExit(f"our build {name} failed: {run['error']}")
    return {
        "wall_seconds": run["wall_seconds"],
        "cpu_seconds": run["cpu_seconds"],
        "elapsed": run.get("elapsed"),
        "nodes": run["nodes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="WordNet glosses")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "dbt_floor")
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the .json")
    args = parser.parse_args()
    if args.render:
        write_report(args.output, read_json(args.output.with_suffix(".json")), markdown)
        return

    source = input_file("wordnet", args.size)
    run_dir = WORK_DIR / f"wordnet-{args.size}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cold = run_pipeline(source, run_dir, name="cold")
    if cold.get("error"):
        raise SystemExit(f"our cold build failed: {cold['error']}")
    manifest = json.loads((run_dir / "target" / "manifest.json").read_text())
    results: dict[str, Any] = {
        "machine": machine(),
        "texts": args.size,
        "cold_wall_seconds": cold["wall_seconds"],
        "twins": {},
        "rounds": [],
    }
    # each twin built once first: its full parse and first tables are not what is measured
    for twin, (tests, one_model) in TWINS.items():
        folder = WORK_DIR / twin
        results["twins"][twin] = write_twin(manifest, folder, tests, one_model)
        build_twin(folder, "first")
    ours(source, run_dir, "warm")  # our first rebuild (partial parse written)
    for number in range(1, args.rounds + 1):
        row: dict[str, Any] = {"round": number, "load_before": load_average()}
        # the target's yardstick measured in the same minutes: a cold build, fresh database
        fresh = WORK_DIR / f"wordnet-{args.size}-cold"
        shutil.rmtree(fresh, ignore_errors=True)
        row["cold"] = ours(source, fresh, "cold")
        row["ours"] = ours(source, run_dir, f"round{number}")
        for key, dbt_args in OUR_VARIANTS.items():
            row[key] = ours(source, run_dir, f"round{number}-{key}", dbt_args)
        for twin in TWINS:
            row[twin] = build_twin(WORK_DIR / twin, f"round{number}")
        row["load_after"] = load_average()
        results["rounds"].append(row)
        log(
            f"floor: round {number}: "
            + ", ".join(
                f"{k} {v['wall_seconds']:.1f}s" for k, v in row.items() if isinstance(v, dict)
            )
        )
        results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        write_report(args.output, results, markdown)
    log(f"wrote {args.output.with_suffix('.md')}")


# our rebuild again with other dbt arguments
OUR_VARIANTS = {
    "ours_threads_2": ["--threads", "2"],
    "ours_threads_8": ["--threads", "8"],
    "ours_no_tests": ["--exclude-resource-type", "test", "unit_test"],
}
VARIANTS = {
    "ours": "our unchanged rebuild (profile: 4 threads)",
    "ours_threads_2": "our unchanged rebuild, `--threads 2`",
    "ours_threads_8": "our unchanged rebuild, `--threads 8`",
    "ours_no_tests": "our unchanged rebuild, `--exclude-resource-type test unit_test`",
    "twin": "twin: every node",
    "twin_one_test_per_model": "twin: one test per tested model",
    "twin_no_tests": "twin: models and seed, no test",
    "twin_one_model": "twin: one model",
}


def markdown(results: dict[str, Any]) -> str:
    lines = study_head(
        "The rebuild floor: dbt's own cost per node", "dbt_floor.py", __doc__, results
    )
    rounds = results["rounds"]
    # each round's cold build (before 6f278d1: one cold build before the rounds)
    colds = [r.get("cold", {}).get("wall_seconds", results["cold_wall_seconds"]) for r in rounds]

    def median_ratio(key: str, to: list[float]) -> float:
        return statistics.median(
            r[key]["wall_seconds"] / t for r, t in zip(rounds, to, strict=True)
        )

    base = [r["ours"]["wall_seconds"] for r in rounds]
    rows = []
    for key, label in VARIANTS.items():
        if any(key not in r for r in rounds):
            continue
        walls = [r[key]["wall_seconds"] for r in rounds]
        elapsed = [r[key]["elapsed"] for r in rounds if r[key]["elapsed"] is not None]
        busy = cores_busy(rounds, key)
        vs_cold = median_ratio(key, colds)
        rows.append(
            [
                label,
                rounds[0][key]["nodes"],
                secs(statistics.median(walls)),
                f"{secs(min(walls))} - {secs(max(walls))}",
                secs(statistics.median(elapsed)) if elapsed else "",
                fmt(statistics.median(busy), 2) if busy else "",
                fmt(median_ratio(key, base), 2),
                fmt(vs_cold, 3),
                "yes" if vs_cold <= TARGET else "**no**",
            ]
        )
    header = ["build", "nodes", "wall (median)", "range", "dbt's run of the nodes (median)"]
    header += ["cores busy (CPU s / wall s, median)", "x our rebuild", "x our cold build"]
    header += ["<= 10 % of the cold build"]
    twin, single = median_ratio("twin", base), median_ratio("twin_one_model", colds)
    lines += [
        f"Our cold builds of {results['texts']} texts: "
        + (
            ", ".join(secs(c) for c in colds)
            if all("cold" in r for r in rounds)
            else f"{secs(results['cold_wall_seconds'])} (one, before the rounds)"
        )
        + f"; rounds: {len(rounds)}. Ratios are medians over the rounds of each round's ratio"
        " (to our unchanged rebuild, to the cold build of the same round). The twin with every"
        f" node takes {fmt(twin, 2)} x our unchanged rebuild: the rest is the pipeline's own"
        f" work on {results['texts']} rows. dbt with a single model that does nothing takes"
        f" {fmt(single, 3)} x our cold build.",
        "",
        table(header, rows),
        "",
        *cores_note(rounds),
        "Twins: "
        + "; ".join(
            f"{twin}: {c['models']} models, {c['seeds']} seed(s), {c['tests']} tests"
            for twin, c in results["twins"].items()
        )
        + " (our build's other nodes, its on-run-end hooks, unit test and exposures, are"
        " not in the twins: they count as the pipeline's work)"
        + ". Load average before / after each round: "
        + "; ".join(f"{r['load_before']} / {r['load_after']}" for r in rounds)
        + ".",
        "",
    ]
    return "\n".join(lines)


def cores_busy(rounds: list[dict[str, Any]], key: str) -> list[float]:
    """Build ``key``'s CPU seconds per wall second in each round (none in runs made before
    they were measured)."""
    return [
        r[key]["cpu_seconds"] / r[key]["wall_seconds"]
        for r in rounds
        if r[key].get("cpu_seconds") is not None
    ]


def cores_note(rounds: list[dict[str, Any]]) -> list[str]:
    """What the twin's CPU seconds say about threads (nothing for runs without them)."""
    busy = cores_busy(rounds, "twin")
    if not busy:
        return []
    said = (
        f"The full twin, whose nodes do no work, used {fmt(min(busy), 2)}-{fmt(max(busy), 2)}"
        " CPU seconds per second of wall on this 2-core machine (4 threads in its profile)"
    )
    if max(busy) <= 1.2:  # one core: the threads take turns
        said += (
            ": dbt's own work per node runs in Python, one thread at a time, so it is bound by"
            " one core and more threads cannot spread it (its threads overlap only where"
            " DuckDB runs a query)"
        )
    return [said + ".", ""]


if __name__ == "__main__":
    main()
