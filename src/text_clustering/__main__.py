"""Command line: ``python -m text_clustering {warmup,summary,build,spark}``.

- ``warmup``: compile umap-learn's numba code into the persistent cache and export the
  default embedding model to ONNX (both run by ``make setup``), so the first ``dbt build``
  pays neither ~30 s of JIT nor the ~20 s export.
- ``summary [DATABASE]``: print where a build's outputs are and what they hold.
- ``build [--force] [--check] [--database PATH] [DBT BUILD ARGS]``: ``dbt build``, not
  started when nothing it reads changed since the last build (:mod:`text_clustering.build_guard`).
- ``spark --master URL --output DIR [--vars YAML] ...``: the pipeline on Apache Spark
  (:mod:`text_clustering.spark`), the marts written as parquet under DIR.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .build_inputs import DEFAULT_DATABASE  # the profile's default path

METRICS_SHOWN = ("noise_share", "silhouette", "nmi", "ari", "purity")


def warmup() -> None:
    import numpy as np

    from .embed import DEFAULT_MODEL, resolve_model_path
    from .onnx_backend import exported
    from .projection import UMAPProjector

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    UMAPProjector(n_neighbors=5).fit(rng.normal(size=(64, 8)).astype(np.float32))
    print(
        f"numba cache warm in {time.perf_counter() - start:.1f}s: {os.environ['NUMBA_CACHE_DIR']}"
    )
    start = time.perf_counter()
    folder = exported(resolve_model_path(DEFAULT_MODEL))
    print(f"ONNX export of {DEFAULT_MODEL} ready in {time.perf_counter() - start:.1f}s: {folder}")


def summary(database: str) -> int:
    import duckdb

    path = Path(database)
    if not path.exists():
        print(f"no database at {path}: run `make demo` (or dbt build) first", file=sys.stderr)
        return 1
    con = duckdb.connect(str(path), read_only=True)
    n_texts = con.sql("select count(*) from fct_text_clusters").fetchall()[0][0]
    figure, html_map = con.sql(
        "select figure_path, map_path from rpt_text_clusters_figure"
    ).fetchall()[0]
    report = con.sql("select report_path from rpt_text_clusters_report").fetchall()[0][0]
    exports = [r[0] for r in con.sql("select export_path from rpt_parquet_exports").fetchall()]
    print(f"\nDuckDB database: {path.resolve()}")
    print(f"  fct_text_clusters: {n_texts} texts, each with projection, cluster and label")
    print("  dim_clusters:      one row per cluster (noise = -1)")
    print("  dim_topics:        one row per (level, topic) of the hierarchy above the clusters")
    print("  fct_text_topics:   one row per (text, level)")
    for name, where in (("Figure", figure), ("Interactive map", html_map), ("Report", report)):
        if where:
            print(f"{name + ':':17}{where}")
    for where in exports:
        print(f"{'Parquet export:':17}{where}")
    metrics = con.sql("select * from rpt_cluster_metrics").df().iloc[0]
    shown = [f"{k} {v:.3f}" for k, v in metrics.items() if k in METRICS_SHOWN and v == v]
    print(f"Metrics:         {', '.join(shown)} (rpt_cluster_metrics)")
    print("\nHeadline topics (largest first; dim_topics, drill down by level and parent_topic_id):")
    print(
        con.sql(
            "select level, topic_id, n_texts, round(share, 3) as share, summary_label "
            "from dim_topics where is_headline_level and not is_noise order by n_texts desc"
        )
    )
    print("\nClusters (largest first):")
    print(
        con.sql(
            "select cluster_label, n_texts, round(share, 3) as share, summary_label, model_name "
            "from dim_clusters order by is_noise, n_texts desc"
        )
    )
    overrides = con.sql(
        "select count(*) filter (status = 'applied'), count(*) filter (status = 'stale') "
        "from int_cluster_overrides"
    ).fetchall()[0]
    if any(overrides):
        print(f"\nOverrides (seeds/cluster_overrides.csv): {overrides[0]} applied")
    if overrides[1]:
        print(f"{overrides[1]} stale, not applied (fix or delete these rows):")
        print(
            con.sql(
                "select override_id, action, stale_reason from int_cluster_overrides "
                "where status = 'stale' order by override_id"
            )
        )
    print(
        'Query it (while no build runs): .venv/bin/python -c "import duckdb; print(duckdb'
        f".connect('{path}', read_only=True).sql('select * from fct_text_clusters limit 10'))\""
    )
    return 0


def spark(args: argparse.Namespace) -> int:
    import importlib

    yaml = importlib.import_module("yaml")  # dbt's own dependency (whether typed or not)
    from .errors import TextClusteringError
    from .spark import check_master, run, session, settings_from, source_kind

    try:
        given = yaml.safe_load(args.vars) if args.vars else {}
        if not isinstance(given, dict):
            raise ValueError("not a mapping")
    except (yaml.YAMLError, ValueError) as exc:
        print(f"--vars must be a YAML/JSON mapping like dbt's --vars: {exc}", file=sys.stderr)
        return 2
    for name in ("source_path", "source_table", "text_column", "id_column", "embedding_column"):
        value = getattr(args, name)
        if value is not None:
            given[name] = value
    if args.source_table and "source_path" not in given:
        given["source_path"] = None
    conf = dict(item.split("=", 1) for item in args.conf)
    try:
        settings = settings_from(given)
        check_master(args.master)  # both before a JVM starts
        if settings.get("source_path"):
            source_kind(str(settings["source_path"]))
        engine = session(args.master, conf=conf)
        try:
            done = run(
                engine,
                settings,
                Path(args.output),
                cache=Path(args.cache) if args.cache else None,
                partitions=args.partitions,
            )
        finally:
            engine.stop()
    except TextClusteringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{done['n_texts']} texts, {done['n_clusters']} clusters (fitted on {done['n_fit']}); "
        f"marts: {', '.join(done['outputs'].values())}; seconds per stage: {done['seconds']}"
    )
    return 0


def build(argv: list[str]) -> int:
    """Our own options out of ``argv`` (anywhere in it); every other argument goes to dbt."""
    from .build_guard import build as guarded_build

    options: dict = {"force": False, "check": False, "database": None}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("--force", "--check"):
            options[arg[2:]] = True
        elif arg == "--database":
            options["database"] = next(args, None)
            if options["database"] is None:
                print("--database needs a path (the DuckDB file dbt builds)", file=sys.stderr)
                return 2
        elif arg.startswith("--database="):
            options["database"] = arg.split("=", 1)[1]
        elif arg in ("-h", "--help"):
            print(BUILD_HELP)
            return 0
        else:
            rest.append(arg)
    return guarded_build(rest, **options)


BUILD_HELP = """usage: python -m text_clustering build [--force] [--check] [--database PATH]
                                       [DBT ARGS]

dbt build DBT ARGS, unless nothing it reads changed since the last build this command ran
(docs/incremental.md): then it says the tables are current and does not start dbt.

  --force          build anyway
  --check          build nothing: exit 0 when the tables are current, 1 (with the reason)
                   when a build would run
  --database PATH  the DuckDB file the profile builds (default: env DBT_DUCKDB_PATH, else
                   output/text_clustering.duckdb, as this project's profiles.yml)"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "build":  # dbt's own options pass through untouched
        return build(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m text_clustering", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "warmup", help="fill the numba cache and export the default embedding model to ONNX"
    )
    show = sub.add_parser("summary", help="print where a build's outputs are")
    show.add_argument(
        "database", nargs="?", default=os.environ.get("DBT_DUCKDB_PATH", DEFAULT_DATABASE)
    )
    sub.add_parser(
        "build", help="dbt build, skipped when nothing changed (build --help)", add_help=False
    )
    on_spark = sub.add_parser(
        "spark", help="run the pipeline on Apache Spark; marts as parquet (docs/distributed.md)"
    )
    on_spark.add_argument("--master", required=True, help="spark://HOST:PORT or local[N]")
    on_spark.add_argument("--output", required=True, help="folder of the parquet marts")
    on_spark.add_argument("--vars", help="the dbt vars, as YAML/JSON: '{eps: 0.3, n: 2}'")
    on_spark.add_argument("--source-path", help="var source_path (file or parquet folder)")
    on_spark.add_argument("--source-table", help="var source_table (a Spark catalog table)")
    on_spark.add_argument("--text-column", help="var text_column")
    on_spark.add_argument("--id-column", help="var id_column")
    on_spark.add_argument("--embedding-column", help="var embedding_column")
    on_spark.add_argument("--cache", help="embedding and LLM caches (default OUTPUT/_cache)")
    on_spark.add_argument("--partitions", type=int, help="partitions of the per-text maps")
    on_spark.add_argument(
        "--conf", action="append", default=[], help="a Spark setting KEY=VALUE (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.command == "spark":
        return spark(args)
    if args.command == "warmup":
        warmup()
        return 0
    return summary(args.database)


if __name__ == "__main__":
    sys.exit(main())
