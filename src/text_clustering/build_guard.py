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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAMP_NAME = "text_clustering_build.json"
STAMP_VERSION = 1
DEFAULT_DATABASE = "output/text_clustering.duckdb"  # profiles.yml's default path
# dbt options that change only what dbt prints or logs, not what it builds
NEUTRAL_WITH_VALUE = frozenset(
    {
        "--log-path",
        "--log-level",
        "--log-level-file",
        "--log-format",
        "--log-format-file",
        "--log-file-max-bytes",
        "--printer-width",
    }
)
NEUTRAL_FLAGS = frozenset(
    {
        "--quiet",
        "-q",
        "--no-quiet",
        "--debug",
        "-d",
        "--no-debug",
        "--use-colors",
        "--no-use-colors",
        "--use-colors-file",
        "--no-use-colors-file",
    }
)
FULL_REFRESH_FLAGS = frozenset({"--full-refresh", "-f"})
ENVIRONMENT_PREFIXES = ("DBT_", "TEXT_CLUSTERING_")
ENVIRONMENT_NAMES = ("PYTHONPATH", "OPENAI_BASE_URL")
SECRET_PREFIX = "DBT_ENV_SECRET_"
SECRET_NAMES = ("OPENAI_API_KEY",)  # whether they are set counts, never their value
ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")
# dbt_project.yml keys of the folders dbt reads (dbt packages' too), and their defaults
PROJECT_PATHS: dict[str, list[str] | str] = {
    "model-paths": ["models"],
    "macro-paths": ["macros"],
    "test-paths": ["tests"],
    "seed-paths": ["seeds"],
    "snapshot-paths": ["snapshots"],
    "analysis-paths": ["analyses"],
    "packages-install-path": "dbt_packages",
}
PROJECT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "selectors.yml")
# Where a build's labels say an LLM request is still without a final reply
PENDING_STATUSES = ("failed", "skipped", "not_asked")
LABELLED_TABLES = ("int_clusters_named", "int_topics_named")
# Where the report models record the files they wrote (absolute paths)
WRITTEN_FILES = {
    "rpt_text_clusters_figure": ("figure_path", "map_path"),
    "rpt_text_clusters_report": ("report_path",),
    "rpt_parquet_exports": ("export_path",),
}


@dataclass(frozen=True)
class Layout:
    """Where one ``dbt build`` reads and writes: the project folder, its target folder (the
    stamp's), the profile file and the DuckDB database."""

    project_dir: Path
    target_dir: Path
    profiles_file: Path | None
    database: Path

    @property
    def stamp(self) -> Path:
        return self.target_dir / STAMP_NAME


def option(args: Sequence[str], name: str) -> str | None:
    """The value of ``name`` in dbt's ``args`` (``--name value`` or ``--name=value``), if given."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def significant_args(args: Sequence[str]) -> list[str]:
    """``args`` without the options that change only dbt's logging."""
    kept: list[str] = []
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg in NEUTRAL_WITH_VALUE:
            skip_next = True
        elif arg in NEUTRAL_FLAGS or arg.split("=", 1)[0] in NEUTRAL_WITH_VALUE:
            continue
        else:
            kept.append(arg)
    return kept


def _yaml(path: Path) -> dict[str, Any]:
    import importlib

    yaml = importlib.import_module("yaml")  # dbt's own dependency (whether typed or not)
    loaded = yaml.safe_load(path.read_text()) if path.is_file() else None
    return loaded if isinstance(loaded, dict) else {}


def layout(args: Sequence[str], environ: Mapping[str, str], database: str | None = None) -> Layout:
    """Resolve the folders and files of a ``dbt build <args>`` started in the working
    directory, as dbt does: ``--project-dir`` / ``DBT_PROJECT_DIR``, ``--target-path`` /
    ``DBT_TARGET_PATH`` / dbt_project.yml, ``--profiles-dir`` / ``DBT_PROFILES_DIR``; the
    database is ``database``, else ``DBT_DUCKDB_PATH`` (this project's profile reads it),
    else the profile's default."""
    project_dir = Path(
        option(args, "--project-dir") or environ.get("DBT_PROJECT_DIR") or "."
    ).resolve()
    target = (
        option(args, "--target-path")
        or environ.get("DBT_TARGET_PATH")
        or _yaml(project_dir / "dbt_project.yml").get("target-path")
        or "target"
    )
    target_dir = Path(target) if Path(target).is_absolute() else project_dir / target
    profiles_dir = option(args, "--profiles-dir") or environ.get("DBT_PROFILES_DIR")
    candidates = [Path(profiles_dir)] if profiles_dir else [project_dir, Path.home() / ".dbt"]
    profiles_file = next(
        (c / "profiles.yml" for c in candidates if (c / "profiles.yml").is_file()), None
    )
    path = Path(database or environ.get("DBT_DUCKDB_PATH") or DEFAULT_DATABASE)
    return Layout(project_dir, target_dir.resolve(), profiles_file, path.resolve())


def _digest(parts: Iterable[Any]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode() + b"\0")
    return digest.hexdigest()


def _files_digest(files: Iterable[Path], root: Path) -> str:
    """sha256 over the relative paths and contents of ``files``."""
    digest = hashlib.sha256()
    for path in sorted(set(files)):
        digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path).encode())
        digest.update(b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _tree(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]


def project_files(where: Layout) -> list[Path]:
    """The dbt project's files (under the folders dbt_project.yml names) and the profile."""
    config = _yaml(where.project_dir / "dbt_project.yml")
    files: list[Path] = []
    for key, default in PROJECT_PATHS.items():
        folders = config.get(key) or default
        for folder in [folders] if isinstance(folders, str) else folders:
            files += _tree(where.project_dir / folder)
    files += [where.project_dir / name for name in PROJECT_FILES]
    files = [f for f in files if f.is_file()]
    if where.profiles_file is not None:
        files.append(where.profiles_file.resolve())
    return files


def env_var_names(files: Iterable[Path]) -> set[str]:
    """The environment variables ``files`` read with dbt's ``env_var('NAME', ...)``."""
    names: set[str] = set()
    for path in files:
        names.update(ENV_VAR_CALL.findall(path.read_bytes().decode("utf-8", "replace")))
    return names


def environment_digest(environ: Mapping[str, str], read_by_project: Iterable[str] = ()) -> str:
    """The environment variables a build reads: ours, dbt's and those the project's files
    name in ``env_var()`` (``read_by_project``); secrets by presence only, never by value."""
    named = set(read_by_project)
    read = {
        name: value
        for name, value in environ.items()
        if (name.startswith(ENVIRONMENT_PREFIXES) or name in ENVIRONMENT_NAMES or name in named)
        and not name.startswith(SECRET_PREFIX)
    }
    secrets = sorted(
        name for name in environ if name.startswith(SECRET_PREFIX) or name in SECRET_NAMES
    )
    return _digest([sorted(read.items()), secrets, sys.executable, sys.version])


def code_digest() -> str:
    """This package's files and the name and version of every installed distribution."""
    from importlib import metadata

    package = Path(__file__).resolve().parent
    versions = sorted(
        f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata
    )
    return _digest([_files_digest(_tree(package), package), versions])


def file_state(path: Path) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (a folder: summed over its files), None if missing."""
    if path.is_dir():
        states = [file_state(p) for p in sorted(_tree(path))]
        return [sum(s[0] for s in states if s), max((s[1] for s in states if s), default=0)]
    try:
        stat = path.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def database_state(database: Path) -> list[Any]:
    """The database file's size and modification time, and whether a WAL file is beside it."""
    return [file_state(database), Path(f"{database}.wal").exists()]


def source_relations(manifest: Mapping[str, Any]) -> list[str]:
    """The SQL relation of every source in dbt's ``manifest``, as dbt-duckdb reads it: the
    source's meta ``external_location`` filled from its meta, else its relation name."""
    sources = manifest.get("sources", {})
    relations = []
    for key in sorted(sources):
        node = sources[key]
        meta = {**(node.get("config") or {}).get("meta", {}), **(node.get("meta") or {})}
        location = meta.get("external_location")
        if location:
            relation = location.format(**{**node, **meta}).strip()
            if not relation.startswith("(") and "(" not in relation:
                relation = "'" + relation.replace("'", "''") + "'"
            relations.append(relation)
        else:
            relations.append(node["relation_name"])
    return relations


def sources_digest(connection: Any, relations: Sequence[str]) -> str:
    """Row count and two sums of DuckDB's row hashes (XOR, and a sum that a pair of equal
    rows does not cancel) of every source relation."""
    parts = []
    for relation in relations:
        parts.append(
            connection.sql(
                "select count(*), coalesce(bit_xor(hash(source_rows)), 0), "
                "coalesce(sum(hash(source_rows)::hugeint), 0) "
                f"from (select * from {relation}) as source_rows"
            ).fetchall()[0]
        )
    return _digest([list(relations), parts])


def model_relations(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The relation (``"db"."schema"."name"``) of every model in dbt's ``manifest``, by name."""
    return {
        node["name"]: node["relation_name"]
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model" and node.get("relation_name")
    }


def pending_llm_requests(connection: Any, relations: Mapping[str, str]) -> int:
    """How many clusters and topics of the build have a label or relabel request without a
    final reply (failed, skipped, not asked): a rebuild would ask them again. ``relations``:
    :func:`model_relations`."""
    statuses = ", ".join(f"'{s}'" for s in PENDING_STATUSES)
    pending = 0
    for table in LABELLED_TABLES:
        if table in relations:
            pending += connection.sql(
                f"select count(*) from {relations[table]} where label_status in ({statuses}) "
                f"or relabel_status in ({statuses})"
            ).fetchall()[0][0]
    return pending


def written_files(connection: Any, relations: Mapping[str, str]) -> list[str]:
    """The files the report models say they wrote."""
    paths: list[str] = []
    for table, columns in WRITTEN_FILES.items():
        if table in relations:
            for column in columns:
                paths += [
                    row[0]
                    for row in connection.sql(
                        f"select distinct {column} from {relations[table]} "
                        f"where {column} is not null"
                    ).fetchall()
                ]
    return sorted(set(paths))


def inputs(where: Layout, args: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The digests of what a build is made from, but its sources (cheapest first)."""
    files = project_files(where)
    return {
        "the dbt arguments": _digest(significant_args(args)),
        "the environment (DBT_*, TEXT_CLUSTERING_*, PYTHONPATH, OPENAI_*, env_var())": (
            environment_digest(environ, env_var_names(files))
        ),
        "the dbt project's files": _files_digest(files, where.project_dir),
        "this package's code or the installed packages": code_digest(),
    }


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
