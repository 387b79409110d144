"""What one ``dbt build`` reads and writes, as the build guard compares it
(:mod:`text_clustering.build_guard`).

:func:`layout` finds the folders and files of a ``dbt build`` the way dbt does; the digests
cover the dbt arguments that change what is built (:func:`significant_args`), the
environment the build reads (:func:`environment_digest`), the project's files
(:func:`project_files`), this package's code and the installed packages
(:func:`code_digest`), and the content of every source (:func:`sources_digest`, read as
dbt-duckdb reads it: :func:`source_relations`); :func:`file_state` and
:func:`database_state` say whether a file or the database was written since. What the
build left in its tables is read through the manifest's relations
(:func:`model_relations`): LLM requests still without a final reply, and the files the
report models wrote.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAMP_NAME = "text_clustering_build.json"  # the guard's record, in the target folder
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
