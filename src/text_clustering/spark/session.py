"""The Spark session of a run: its vars (:data:`DEFAULT_VARS`, :func:`settings_from`), the
master checked before any work (:func:`check_master`), the session whose executors run this
Python (:func:`session`), and what ran where, from Spark's status API (:func:`executor_status`,
:func:`job_status`)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import is_unset
from ..errors import ConfigError, EngineError

# The dbt vars the Spark path reads, with dbt_project.yml's defaults (a test checks them).
DEFAULT_VARS: dict[str, Any] = {
    "source_path": None,
    "source_table": None,
    "text_column": "text",
    "id_column": None,
    "embedding_column": None,
    "embedding_model": "all-MiniLM-L6-v2",
    "embedding_backend": "onnx",
    "embedding_batch_size": 64,
    "n_neighbors": 15,
    "min_dist": 0.0,
    "metric": "cosine",
    "random_state": 42,
    "n_epochs": None,
    "max_fit_rows": 30000,
    "clustering_algorithm": "dbscan",
    "eps": None,
    "min_samples": 5,
    "noise_policy": "centroid",
    "noise_max_distance": 2.0,
    "target_noise_share": 0.0,
    "max_top_topics": 12,
    "headline_level": None,
    "samples_per_cluster": 10,
    "n": 1,
    "default_label": "Unclassified",
    "llm_model": "gpt-4o-mini",
    "redact": ["private_key", "api_key", "bearer_token", "email", "card", "ip", "phone"],
    "query_title": "Examples",
    "context": None,
    "system_prompt": None,
    "examples": None,
    "use_default_structured_output": True,
    "input_batch_size": 4,
    "max_example_chars": 1000,
    "max_prompt_chars": 12000,
    "llm_temperature": 0.0,
    "llm_seed": 42,
    "llm_timeout": 60,
    "llm_max_attempts": 4,
    "llm_time_budget": 900,
    "llm_dry_run": False,
    "llm_retry_failed": False,
}
BATCH_ROWS = 4096  # rows per Arrow batch in the maps (bounds a worker's memory)
MASTER_TIMEOUT = 5.0  # seconds to reach a master before giving up
EXECUTOR_TIMEOUT = 90.0  # seconds for a standalone master to give the application executors


def settings_from(given: Mapping[str, Any]) -> dict[str, Any]:
    """The vars of a run: :data:`DEFAULT_VARS` updated with ``given`` (unknown names refused,
    so a typo does not silently keep a default; ``"None"``, as dbt renders a null var in a
    yml config, is None)."""
    unknown = sorted(set(given) - set(DEFAULT_VARS))
    if unknown:
        raise ConfigError(
            f"unknown var(s) {', '.join(unknown)} for the Spark path; it reads: "
            f"{', '.join(sorted(DEFAULT_VARS))}"
        )
    return {**DEFAULT_VARS, **{k: None if is_unset(v) else v for k, v in given.items()}}


def check_master(master: str, timeout: float = MASTER_TIMEOUT) -> None:
    """Raise :class:`EngineError` unless every ``host:port`` of a ``spark://`` master URL
    accepts a TCP connection within ``timeout`` seconds (``local[...]`` needs none)."""
    if master.startswith("local"):
        return
    if not master.startswith("spark://"):
        raise ConfigError(
            f"--master {master!r}: give spark://HOST:PORT (a standalone master) or local[N]"
        )
    for address in master[len("spark://") :].split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                pass
        except (OSError, ValueError) as exc:
            raise EngineError(
                f"the Spark master {master} cannot be reached ({host}:{port}: {exc}). Start it "
                "(spark-class org.apache.spark.deploy.master.Master), or fix --master."
            ) from None


def session(master: str, *, app_name: str = "text_clustering", conf: Mapping[str, str] = {}) -> Any:
    """A SparkSession on ``master`` (checked first), executors running this Python with this
    package importable and the offline model settings; waits until a standalone master
    gave it executors, else :class:`EngineError`."""
    check_master(master)
    from pyspark.sql import SparkSession

    # the executors' Python (PySpark reads it from the driver's environment): this one,
    # unless set (on a real cluster: the Python with text_clustering installed)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        "PYTHONPATH": os.pathsep.join(
            p for p in [package_root, os.environ.get("PYTHONPATH", "")] if p
        ),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    for name in ("TEXT_CLUSTERING_ONNX_DIR", "NUMBA_CACHE_DIR"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.executor.processTreeMetrics.enabled", "true")
        .config("spark.executor.metrics.pollingInterval", "500ms")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for name, value in env.items():
        builder = builder.config(f"spark.executorEnv.{name}", value)
    for name, value in conf.items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if master.startswith("spark://"):
        _wait_for_executors(spark, master)
    return spark


def _wait_for_executors(spark: Any, master: str, timeout: float = EXECUTOR_TIMEOUT) -> None:
    status = spark.sparkContext._jsc.sc()
    deadline = time.monotonic() + timeout
    while status.getExecutorMemoryStatus().size() < 2:  # the driver counts as one
        if time.monotonic() > deadline:
            spark.stop()
            raise EngineError(
                f"the Spark master {master} gave no executor in {timeout:.0f}s: are its workers "
                "started, with the cores and memory this application asks for?"
            )
        time.sleep(0.5)


def _status(spark: Any, path: str, attempts: int = 3) -> Any:
    """A document of the application's REST status API (``/api/v1/applications/<id>/...``);
    the UI answers slowly on a loaded machine, so it is asked up to ``attempts`` times."""
    url = spark.sparkContext.uiWebUrl
    if not url:
        return []
    address = f"{url}/api/v1/applications/{spark.sparkContext.applicationId}/{path}"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(address, timeout=60) as reply:
                return json.loads(reply.read())
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(2)
    return []  # pragma: no cover - the loop returns or raises


def executor_status(spark: Any) -> list[dict[str, Any]]:
    """Per executor (the driver included, id ``driver``): host, cores, tasks run, task
    seconds and peak memory (JVM heap, JVM and Python RSS, bytes) from the status API."""
    rows = []
    for e in _status(spark, "allexecutors"):
        peak = e.get("peakMemoryMetrics") or {}
        rows.append(
            {
                "id": e["id"],
                "host_port": e.get("hostPort"),
                "cores": e.get("totalCores"),
                "total_tasks": e.get("totalTasks"),
                "task_seconds": round(e.get("totalDuration", 0) / 1000, 2),
                "peak_jvm_heap": peak.get("JVMHeapMemory"),
                "peak_jvm_rss": peak.get("ProcessTreeJVMRSSMemory"),
                "peak_python_rss": peak.get("ProcessTreePythonRSSMemory"),
            }
        )
    return rows


def job_status(spark: Any) -> list[dict[str, Any]]:
    """Per job description (embed, fit sample, place, the marts): its jobs' stages' tasks,
    task seconds (executor run time) and rows written, from the status API."""
    stages = {s["stageId"]: s for s in _status(spark, "stages?status=complete")}
    out: dict[str, dict[str, Any]] = {}
    for job in _status(spark, "jobs"):
        described = job.get("description") or ""
        if not described or job.get("status") != "SUCCEEDED":
            continue
        row = out.setdefault(
            described, {"description": described, "tasks": 0, "task_seconds": 0.0, "output_rows": 0}
        )
        for stage in (stages[i] for i in job.get("stageIds", []) if i in stages):
            row["tasks"] += stage.get("numCompleteTasks", 0)
            row["task_seconds"] = round(
                row["task_seconds"] + stage.get("executorRunTime", 0) / 1000, 2
            )
            row["output_rows"] += stage.get("outputRecords", 0)
    return list(out.values())
