"""Run dbt the way a user does, on temporary DuckDB files, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from conftest import REPO

DBT = Path(sys.executable).parent / "dbt"
SENTINEL_KEY = "sk-sentinel-7f3a9c1e5b"


def dbt_command(workdir: Path, database: Path, *args: str, vars=None, env=None):
    """The command line and environment of a dbt run, with its own target/ and logs/ under
    ``workdir``; OPENAI_* come only from ``env``. The project is the repo's, or
    ``workdir / "project"`` when :func:`project_with_overrides` made one there."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    environment.update(
        DBT_PROFILES_DIR=str(REPO),
        DBT_DUCKDB_PATH=str(database),
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        **(env or {}),
    )
    command = [
        str(DBT),
        *args,
        "--target-path",
        str(workdir / "target"),
        "--log-path",
        str(workdir / "logs"),
    ]
    outputs = {  # every file a build writes goes under workdir, never into the repo
        "figure_path": str(workdir / "output" / "text_clusters.png"),
        "map_path": str(workdir / "output" / "text_clusters.html"),
        "report_path": str(workdir / "output" / "report.md"),
        "export_dir": str(workdir / "output" / "exports"),
    }
    command += ["--vars", json.dumps({**outputs, **(vars or {})})]
    return command, environment


def project_dir(workdir: Path) -> Path:
    return workdir / "project" if (workdir / "project").is_dir() else REPO


def project_with_overrides(workdir: Path, csv: str) -> Path:
    """``workdir / "project"``: the repo's dbt project (links to its folders) with its own
    seeds/cluster_overrides.csv holding ``csv`` (rewritten on every call)."""
    project = workdir / "project"
    (project / "seeds").mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "models", "python_models", "macros", "tests", "data"):
        if not (project / name).exists():
            (project / name).symlink_to(REPO / name)
    (project / "seeds" / "_seeds.yml").write_text((REPO / "seeds" / "_seeds.yml").read_text())
    (project / "seeds" / "cluster_overrides.csv").write_text(csv)
    return project


def run_dbt(workdir: Path, database: Path, *args: str, vars: dict | None = None, env=None):
    """Run dbt to the end; returns the CompletedProcess (stdout, stderr as text)."""
    command, environment = dbt_command(workdir, database, *args, vars=vars, env=env)
    return subprocess.run(
        command,
        cwd=project_dir(workdir),
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def start_dbt(workdir: Path, database: Path, *args: str, vars: dict | None = None, env=None):
    """Start dbt in the background; stdout and stderr merged, as text lines."""
    command, environment = dbt_command(workdir, database, *args, vars=vars, env=env)
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def query(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.sql(sql).fetchall()


def mart(database: Path) -> list[tuple]:
    return query(
        database,
        "select text_id, cluster_label, projection, summary_label, summary_labels, model_name "
        "from fct_text_clusters order by text_id",
    )


@contextmanager
def database_held(database: Path, *, read_only: bool = False) -> Iterator[None]:
    """Another process holding ``database`` open (read-only or as a writer) meanwhile."""
    flag = ", read_only=True" if read_only else ""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(database)!r}{flag}); "
            "print('holding', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        yield
    finally:
        holder.kill()
        holder.wait()


def python_output(code: str, timeout: float = 300) -> str:
    """What ``python -c code`` prints, in a fresh interpreter (what it imports is its own);
    a hang fails after ``timeout`` seconds."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=timeout
    )
    return result.stdout.strip()
