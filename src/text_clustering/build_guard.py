"""``python -m text_clustering build``: ``dbt build``, not started when it would change nothing.

An unchanged ``dbt build`` of this project still pays dbt's own work per node (a third of a
cold build at 100k texts, docs/performance.md), although every step finds its inputs
unchanged. This command runs ``dbt build`` with the arguments given and, after a build that
succeeded, writes ``<target-path>/text_clustering_build.json`` (the *stamp*): digests of
what the build was made from and the state of what it wrote. The next call computes the same
and, when all of it is equal, says the tables are current and does not start dbt.

What the stamp compares, cheapest first (the first difference is the reason logged):

- the dbt arguments (all but those that only change logging: ``--log-path``, ``--quiet``, ...);
- the environment the build reads: every ``DBT_*`` and ``TEXT_CLUSTERING_*`` variable,
  ``PYTHONPATH``, ``OPENAI_BASE_URL``, those the project's files read with ``env_var()``, and
  whether ``OPENAI_API_KEY`` and ``DBT_ENV_SECRET_*`` are set (never their values), and the
  Python that runs dbt;
- the database file (size and modification time: any write since the build, by anyone,
  builds again) and every file the build wrote (figure, map, report, parquet exports);
- the dbt project's files (models, macros, tests, seeds, ``dbt_project.yml``, the profile),
  this package's code and the installed packages' versions;
- the content of every source the project reads (row count and two sums of DuckDB's row
  hashes of the file or table, read as dbt reads it).

The digests are taken before dbt starts and again after it ends: a build is stamped only
when what it read is what was there before it started. Nothing is stamped, so the next call
builds, after a build that failed, one with ``--full-refresh``, one during which an input
changed, one whose input could not be read before it started (the first in a target folder:
the sources' relations come from the manifest an earlier dbt call left), one that left LLM
requests without labels (failed, skipped or a dry run: a rebuild asks them again), or one
that did not write the database this command checks (``--database`` names it when the
profile is not this project's).

Where a build reads and writes, and the digests, are :mod:`text_clustering.build_inputs`;
this module keeps the stamp and runs dbt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .build_inputs import (
    Layout,
    database_state,
    file_state,
    inputs,
    layout,
    model_relations,
    pending_llm_requests,
    source_relations,
    sources_digest,
    written_files,
)

STAMP_VERSION = 1
FULL_REFRESH_FLAGS = frozenset({"--full-refresh", "-f"})


def _connect(database: Path) -> Any:
    import duckdb

    return duckdb.connect(str(database), read_only=True)


@dataclass
class Seen:
    """What :func:`why_build` computed on its way to a reason to build: the digests of
    :func:`inputs`, and the sources' digest with the relations it read. The build starts
    right after, so :func:`before_build` takes them instead of computing them again (the
    sources' digest reads every input row: ~0.65 s at 100k texts)."""

    inputs: dict[str, str] | None = None
    relations: list[str] | None = None
    sources: str | None = None


def why_build(
    where: Layout, args: Sequence[str], environ: Mapping[str, str], seen: Seen | None = None
) -> str | None:
    """None when the stamp says nothing changed since the last build; else the reason to
    build (the first difference found). ``seen`` is filled with what was computed."""
    seen = Seen() if seen is None else seen
    if any(arg in FULL_REFRESH_FLAGS for arg in args):
        return "--full-refresh rebuilds everything"
    try:
        stamp = json.loads(where.stamp.read_text())
    except (OSError, ValueError):
        return f"no record of an earlier build ({where.stamp})"
    if stamp.get("version") != STAMP_VERSION:
        return "the record of the last build is from another version"
    if stamp.get("database_path") != str(where.database):
        return f"the last build wrote another database ({stamp.get('database_path')})"
    if database_state(where.database) != stamp.get("database"):
        return f"the database changed since the last build ({where.database})"
    for path, state in stamp.get("files", {}).items():
        if file_state(Path(path)) != state:
            return f"a file the build wrote changed or is gone ({path})"
    now = seen.inputs = inputs(where, args, environ)
    for part, digest in now.items():
        if stamp.get("inputs", {}).get(part) != digest:
            return f"{part} changed"
    relations = stamp.get("sources", {}).get("relations", [])
    try:
        with _connect(where.database) as connection:
            digest = sources_digest(connection, relations)
    except Exception as exc:  # a source gone or unreadable: dbt says what is wrong
        return f"a source could not be read ({type(exc).__name__}: {exc})"
    seen.relations, seen.sources = list(relations), digest
    if digest != stamp.get("sources", {}).get("digest"):
        return "the input (the project's sources) changed"
    if database_state(where.database) != stamp.get("database"):
        return f"the database changed while it was checked ({where.database})"
    return None


def _run_summary(run_results: Path) -> dict[str, int]:
    """Nodes of the build per ``<resource type> <status>``, from dbt's run_results.json."""
    counts: dict[str, int] = {}
    try:
        results = json.loads(run_results.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return counts
    for result in results:
        key = f"{result['unique_id'].split('.')[0]} {result['status']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class Before:
    """What a build was about to read, taken before dbt starts: the database's state, the
    digests of :func:`inputs`, and the sources' relations (from the manifest an earlier dbt
    call left in the target folder) and digest; None where it could not be read."""

    database: list[Any]
    inputs: dict[str, str]
    relations: list[str] | None
    sources: str | None


def before_build(
    where: Layout, args: Sequence[str], environ: Mapping[str, str], seen: Seen | None = None
) -> Before:
    """:class:`Before` of the build about to start; what ``seen`` (:func:`why_build`, just
    before) holds is not computed again (its sources' digest only if it read the relations
    of the manifest in the target folder)."""
    seen = Seen() if seen is None else seen
    relations: list[str] | None = None
    sources = None
    try:
        relations = source_relations(json.loads((where.target_dir / "manifest.json").read_text()))
        if seen.sources is not None and seen.relations == relations:
            sources = seen.sources
        else:
            with _connect(where.database) as connection:
                sources = sources_digest(connection, relations)
    except Exception:  # no manifest yet, no database yet, a source unreadable: not recorded
        pass
    now = seen.inputs if seen.inputs is not None else inputs(where, args, environ)
    return Before(database_state(where.database), now, relations, sources)


def stamp_after_build(
    where: Layout, args: Sequence[str], environ: Mapping[str, str], before: Before
) -> str | None:
    """Write the stamp of the build that just succeeded, if what it read is what was there
    before it started (:func:`before_build`) and still is; None, or why it was not written."""
    if any(arg in FULL_REFRESH_FLAGS for arg in args):
        return "not recorded: a --full-refresh build; the next call runs dbt"
    if not where.database.exists() or database_state(where.database) == before.database:
        return (
            f"not recorded: dbt did not write {where.database}: pass --database with the "
            "path of the DuckDB file your profile builds, so that the next call can check it"
        )
    now = inputs(where, args, environ)
    changed = [part for part, digest in now.items() if before.inputs.get(part) != digest]
    if changed:
        return f"not recorded: {changed[0]} changed while dbt built; the next call builds"
    try:
        manifest = json.loads((where.target_dir / "manifest.json").read_text())
        relations = source_relations(manifest)
        models = model_relations(manifest)
        with _connect(where.database) as connection:
            pending = pending_llm_requests(connection, models)
            if pending:
                return (
                    f"not recorded: the LLM requests of {pending} cluster(s) or topic(s) have no "
                    "final reply (failed, skipped or not asked): the next call runs dbt to ask them"
                )
            files = written_files(connection, models)
            sources = sources_digest(connection, relations)
    except Exception as exc:  # anything unexpected: no stamp, the next call builds
        return f"not recorded: what the build wrote could not be read ({type(exc).__name__}: {exc})"
    if before.sources is None or before.relations != relations:
        return (
            "not recorded: the input could not be read before this build (the first build "
            "in this target folder, or the sources changed), so a change made while dbt "
            "built could not be seen; the next call builds and records"
        )
    if sources != before.sources:
        return "not recorded: the input changed while dbt built; the next call builds"
    stamp = {
        "version": STAMP_VERSION,
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "database_path": str(where.database),
        "database": database_state(where.database),
        "files": {path: file_state(Path(path)) for path in files},
        "inputs": now,
        "sources": {"relations": relations, "digest": sources},
        "nodes": _run_summary(where.target_dir / "run_results.json"),
    }
    where.target_dir.mkdir(parents=True, exist_ok=True)
    partial = where.stamp.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(stamp, indent=1) + "\n")
    partial.replace(where.stamp)
    return None


def _say(message: str) -> None:
    print(f"text_clustering build: {message}", file=sys.stderr, flush=True)


def build(
    args: Sequence[str],
    *,
    database: str | None = None,
    force: bool = False,
    check: bool = False,
    environ: Mapping[str, str] | None = None,
) -> int:
    """``dbt build <args>`` unless the stamp says it would change nothing; dbt's exit code.
    ``force``: build anyway. ``check``: build nothing, exit 0 when the tables are current
    and 1 (with the reason) when a build would run."""
    environ = dict(os.environ if environ is None else environ)
    where = layout(args, environ, database)
    seen = Seen()
    reason = "--force" if force else why_build(where, args, environ, seen)
    if reason is None:
        stamp = json.loads(where.stamp.read_text())
        nodes = ", ".join(f"{n} {key}" for key, n in stamp.get("nodes", {}).items())
        _say(
            f"nothing changed since the build of {stamp['built_at']} ({nodes}): the tables "
            f"in {where.database} are current; dbt not started (--force builds anyway)"
        )
        return 0
    if check:
        _say(f"a build would run: {reason}")
        return 1
    _say(f"running dbt build: {reason}")
    where.stamp.unlink(missing_ok=True)  # a build stopped midway leaves no stamp
    before = before_build(where, args, environ, seen)
    beside = Path(sys.executable).parent / "dbt"  # the dbt of this Python's environment
    dbt = str(beside) if beside.exists() else shutil.which("dbt", path=environ.get("PATH"))
    if dbt is None:
        _say("no dbt found beside this Python or on PATH: install dbt-duckdb (make setup)")
        return 2
    returncode = subprocess.call([dbt, "build", *args], env=environ)
    if returncode != 0:
        return returncode
    not_recorded = stamp_after_build(where, args, environ, before)
    if not_recorded:
        _say(not_recorded)
    return 0
