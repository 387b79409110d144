"""Run our pipeline (``dbt build``) on one input file and measure it; JSON out.

One build = one ``dbt build`` subprocess, run like ``make demo`` (in-repo profile, offline,
warm numba cache) but with the DuckDB file and dbt target folder of its --run-dir (kept between
builds in the same --run-dir, like a user rebuilding in place). It measures the wall time of
the whole ``dbt build`` (dbt start-up included) and its CPU seconds, the peak RSS of its
process tree (polled every 0.1 s), each model's ``execution_time`` from ``run_results.json``,
and then reads the results from the DuckDB file: ``rpt_cluster_metrics``, the cluster of every
text (``fct_text_clusters``) scored against the input's ``label`` column, every level of the topic
hierarchy (``fct_text_topics``; level 0 = the clusters) scored the same way with the headline
level of ``dim_topics`` (``is_headline_level``), row counts of the caches
and how each text got its projection / cluster (``int_texts_projected.projection_source``,
``int_texts_clustered.assigned_by``, when the pipeline has those columns).

    .venv/bin/python bench/run_ours.py --input IN.parquet --run-dir bench/work/NAME [--output J]

Repeat the command with the same --run-dir to rebuild on the same database (a second build).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import OUR_PYTHON, ROOT, load_average, log, run_monitored, tail, write_json
from scores import scores

DBT = OUR_PYTHON.parent / "dbt"
COUNTED_TABLES = ("stg_texts", "int_embedding_cache", "int_texts_embedded", "fct_text_clusters")
# Columns that say how a text was handled in this build, counted per value when present.
STATUS_COLUMNS = {
    "int_texts_projected": ("projection_source",),
    "int_texts_clustered": ("assigned_by",),
}


def sweep(
    source: Path, label: str, var: str, values: list[Any], work: Path
) -> list[dict[str, Any]]:
    """A cold build of ``source`` per value of dbt var ``var`` (each in a fresh run dir under
    ``work``, after the others: nothing else runs beside it). One row per build: ``label``,
    the texts, the value, the projection and clustering steps' times, the build's wall and
    peak RSS, level-0 clusters / NMI / AMI, the best layer of the hierarchy by ARI, and the
    load average."""
    rows = []
    for value in values:
        run_dir = work / f"{label.replace(' ', '')}-{value}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        result = run_pipeline(source, run_dir, extra_vars={var: value}, name="cold")
        level0 = result.get("scores") or {}
        models = result.get("models") or {}
        best = max(result.get("levels") or [{}], key=lambda level: level.get("ari") or 0.0)
        rows.append(
            {
                "set": label,
                "texts": (result.get("row_counts") or {}).get("stg_texts"),
                var: value,
                "projection_seconds": models.get("int_texts_projected"),
                "clustering_seconds": models.get("int_texts_clustered"),
                "wall_seconds": result.get("wall_seconds"),
                "peak_rss_bytes": result.get("peak_rss_bytes"),
                "clusters": level0.get("n_clusters"),
                "nmi": level0.get("nmi"),
                "ami": level0.get("ami"),
                "best_layer": {k: best.get(k) for k in ("level", "n_clusters", "ari")},
                "error": result.get("error"),
                "load": load_average(),
            }
        )
        log(f"sweep: {label} {var}={value}: {rows[-1]}")
    return rows


def pipeline_vars(
    source: Path, figure_path: Path, *, embedding_column: str | None, extra: dict | None
) -> dict[str, Any]:
    """The dbt vars of a benchmark build: only the input mapping, no tuning (plus ``extra``)."""
    return {
        "source_path": str(source),
        "text_column": "text",
        "id_column": "id",
        "embedding_column": embedding_column,
        "reference_label_column": "label",
        "map_path": None,
        "export_dir": None,
        "report_path": None,
        "figure_path": str(figure_path),
        **(extra or {}),
    }


def run_pipeline(
    source: Path,
    run_dir: Path,
    *,
    embedding_column: str | None = "embedding",
    extra_vars: dict | None = None,
    name: str = "build",
    dbt_args: Sequence[str] = (),
    guarded: bool = False,
) -> dict[str, Any]:
    """``dbt build`` on ``source`` with the database ``run_dir/pipeline.duckdb`` (kept between
    calls: a second call on the same ``run_dir`` is a rebuild), plus ``dbt_args`` (e.g.
    ``["--threads", "2"]``). ``guarded``: through ``python -m text_clustering build``, which
    does not start dbt when nothing changed since the last build it ran. Returns the
    measurements."""
    run_dir.mkdir(parents=True, exist_ok=True)
    database = run_dir / "pipeline.duckdb"
    # One target folder and the same vars per run_dir, as a user rebuilding in place has:
    # dbt's partial parsing (target/partial_parse.msgpack) then serves the rebuilds.
    target = run_dir / "target"
    variables = pipeline_vars(
        source.resolve(),
        (run_dir / "figure.png").resolve(),
        embedding_column=embedding_column,
        extra=extra_vars,
    )
    start = [str(OUR_PYTHON), "-m", "text_clustering"] if guarded else [str(DBT)]
    cmd = [
        *start,
        "build",
        "--target-path",
        str(target.resolve()),
        "--log-path",
        str((run_dir / f"logs-{name}").resolve()),
        "--vars",
        json.dumps(variables),
        *dbt_args,
    ]
    env = {
        "DBT_PROFILES_DIR": str(ROOT),
        "NUMBA_CACHE_DIR": str(ROOT / ".cache" / "numba"),
        "DBT_DUCKDB_PATH": str(database.resolve()),
        # The Python models import this checkout's library, whichever venv runs dbt.
        "PYTHONPATH": str(ROOT / "src"),
    }
    (target / "run_results.json").unlink(missing_ok=True)
    how = "python -m text_clustering build" if guarded else "dbt build"
    log(f"ours: {how} {name} on {source.name} -> {run_dir}")
    measured = run_monitored(cmd, env=env, log_path=run_dir / f"{name}.log")
    result: dict[str, Any] = {
        "name": name,
        "guarded": guarded,
        "source": str(source),
        "vars": variables,
        "returncode": measured.returncode,
        "wall_seconds": measured.wall_seconds,
        "cpu_seconds": measured.cpu_seconds,
        "peak_rss_bytes": measured.peak_rss_bytes,
        "log": measured.log_path,
    }
    if guarded:  # did it start dbt, or find nothing changed since the build it recorded?
        result["dbt_started"] = "dbt not started" not in Path(measured.log_path).read_text()
    if (target / "run_results.json").exists():
        shutil.copyfile(target / "run_results.json", run_dir / f"run_results-{name}.json")
    result.update(run_results(run_dir / f"run_results-{name}.json"))
    if measured.returncode != 0:
        result["error"] = tail(measured.log_path)
        log(f"ours: dbt build {name} failed (exit {measured.returncode}); see {measured.log_path}")
    if database.exists():
        try:
            result.update(read_database(database, source))
        except Exception as exc:  # a failed build leaves some tables missing
            result.setdefault("error", f"reading {database}: {exc}")
    log(
        f"ours: {name} wall {measured.wall_seconds:.1f}s, peak RSS "
        f"{measured.peak_rss_bytes / 1e9:.2f} GB, {result.get('scores', {})}"
    )
    return result


def node_kind_and_name(unique_id: str) -> tuple[str, str]:
    """``("model", "int_texts_projected")`` from dbt's ``model.text_clustering.int_texts_projected``
    (a test's name keeps its hash suffix)."""
    kind, _, rest = unique_id.partition(".")
    return kind, rest.split(".", 1)[1] if "." in rest else rest


def run_results(path: Path) -> dict[str, Any]:
    """Per-model execution seconds, test totals and dbt's elapsed time of the nodes
    (models and tests, which run side by side on the profile's threads) from
    ``run_results.json``."""
    if not path.exists():
        return {"models": {}, "tests": {}}
    data = json.loads(path.read_text())
    models: dict[str, float] = {}
    statuses: dict[str, str] = {}
    tests = {"count": 0, "seconds": 0.0, "not_passed": []}
    for item in data["results"]:
        kind, name = node_kind_and_name(item["unique_id"])
        if kind == "model":
            models[name] = float(item["execution_time"])
            statuses[name] = item["status"]
        elif kind == "test":
            tests["count"] += 1
            tests["seconds"] += float(item["execution_time"])
            if item["status"] != "pass":
                tests["not_passed"].append(f"{name}: {item['status']}")
    return {
        "models": models,
        "model_status": statuses,
        "tests": tests,
        "nodes": len(data["results"]),  # every node run: models, tests, seeds, hooks, ...
        "elapsed": float(data.get("elapsed_time") or 0.0) or None,  # dbt's run of the nodes
    }


def read_database(database: Path, source: Path) -> dict[str, Any]:
    """Metrics, scores and row counts read from a finished build's database (read-only)."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        tables = {row[0] for row in con.sql("select table_name from duckdb_tables()").fetchall()}
        out: dict[str, Any] = {"row_counts": {}, "status_counts": {}}
        for table in (
            "stg_texts",
            "int_embedding_cache",
            "int_texts_embedded",
            "fct_text_clusters",
        ):
            if table in tables:
                out["row_counts"][table] = con.sql(f"select count(*) from {table}").fetchall()[0][0]
        for table, columns in STATUS_COLUMNS.items():
            if table not in tables:
                continue
            present = {c[0] for c in con.sql(f"describe {table}").fetchall()}
            for column in (c for c in columns if c in present):
                counts = con.sql(f"select {column}, count(*) from {table} group by 1 order by 1")
                out["status_counts"][f"{table}.{column}"] = {
                    str(k): int(v) for k, v in counts.fetchall()
                }
        if "rpt_cluster_metrics" in tables:
            frame = con.sql("select * from rpt_cluster_metrics").df()
            out["rpt_cluster_metrics"] = {
                k: (None if v != v else v) for k, v in frame.iloc[0].to_dict().items()
            }
        joined = con.sql(
            "select f.cluster_label, cast(s.label as varchar) as label "
            f"from fct_text_clusters f join read_parquet('{source.resolve()}') s "
            "on f.text_id = cast(s.id as varchar)"
        ).fetchall()
        out["scores"] = scores([r[1] for r in joined], [r[0] for r in joined])
        if {"fct_text_topics", "dim_topics"} <= tables:
            out.update(topic_levels(con, source))
        return out
    finally:
        con.close()


def topic_levels(con: Any, source: Path) -> dict[str, Any]:
    """Every level of ``fct_text_topics`` scored against ``source``'s ``label`` (noise -1 its
    own group, as :func:`scores.scores`), and the headline level of ``dim_topics``."""
    rows = con.sql(
        "select t.level, t.topic_id, cast(s.label as varchar) as label "
        f"from fct_text_topics t join read_parquet('{source.resolve()}') s "
        "on t.text_id = cast(s.id as varchar) order by t.level, t.text_id"
    ).fetchall()
    by_level: dict[int, tuple[list[str], list[int]]] = {}
    for level, topic, label in rows:
        reference, predicted = by_level.setdefault(int(level), ([], []))
        reference.append(label)
        predicted.append(int(topic))
    headline = con.sql(
        "select distinct level from dim_topics where is_headline_level order by level"
    ).fetchall()
    return {
        "levels": [
            {"level": level, **scores(reference, predicted)}
            for level, (reference, predicted) in sorted(by_level.items())
        ],
        "headline_levels": [int(r[0]) for r in headline],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run and measure one dbt build of our pipeline; JSON out.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, required=True, help="parquet: id, text, label[, …]")
    parser.add_argument("--run-dir", type=Path, required=True, help="database + dbt target here")
    parser.add_argument("--name", default="build", help="name of this build inside --run-dir")
    parser.add_argument(
        "--no-embedding-column", action="store_true", help="embed the texts (no precomputed)"
    )
    parser.add_argument(
        "--vars", default="{}", help="extra dbt vars as JSON, e.g. '{\"refit\": true}'"
    )
    parser.add_argument("--output", type=Path, help="JSON to write (default: run-dir/NAME.json)")
    args = parser.parse_args()
    result = run_pipeline(
        args.input,
        args.run_dir,
        embedding_column=None if args.no_embedding_column else "embedding",
        extra_vars=json.loads(args.vars),
        name=args.name,
    )
    write_json(args.output or args.run_dir / f"{args.name}.json", result)


if __name__ == "__main__":
    main()
