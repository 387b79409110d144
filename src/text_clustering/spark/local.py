"""A standalone Spark master and workers on this machine, each a process on 127.0.0.1
(:func:`local_cluster`; tests and benchmarks)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EngineError
from ..log import log


@dataclass
class LocalCluster:
    """A standalone master and its workers, each a process of its own on 127.0.0.1."""

    url: str
    web_ui: str
    processes: list[subprocess.Popen[bytes]]
    logs: Path

    def status(self) -> dict[str, Any]:
        """The master's JSON status (its workers, their state, cores and memory)."""
        with urllib.request.urlopen(f"{self.web_ui}/json/", timeout=5) as reply:
            return dict(json.loads(reply.read()))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spark_class() -> Path:
    """``bin/spark-class`` of the installed pyspark (its own Spark distribution)."""
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@contextmanager
def local_cluster(
    workers: int = 2, *, cores: int = 1, memory: str = "2g", timeout: float = 90.0
) -> Iterator[LocalCluster]:
    """Start a standalone Spark master and ``workers`` workers (``cores`` and ``memory``
    each) as separate processes bound to 127.0.0.1 on free ports; stop them all on exit,
    whatever happened (their logs are removed unless something failed). Needs ``java``
    (OpenJDK 17)."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise EngineError("no Java runtime: apt-get install openjdk-17-jre-headless")
    logs = Path(tempfile.mkdtemp(prefix="spark-local-"))
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    env.setdefault("SPARK_HOME", str(spark_class().parents[1]))
    port, web = _free_port(), _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    finished = False

    def start(name: str, *args: str) -> None:
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        processes.append(
            subprocess.Popen(
                [str(spark_class()), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=logs,
            )
        )

    cluster = LocalCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web}", processes, logs)
    try:
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web)),
        )
        for i in range(workers):
            start(
                f"worker-{i}",
                "org.apache.spark.deploy.worker.Worker",
                cluster.url,
                *("--host", "127.0.0.1", "--cores", str(cores), "--memory", memory),
                *("--webui-port", str(_free_port()), "--work-dir", str(logs / f"work-{i}")),
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                alive = [w for w in cluster.status()["workers"] if w["state"] == "ALIVE"]
                if len(alive) >= workers:
                    break
            except OSError:
                pass
            dead = [p for p in processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = (logs / "master.log").read_text(errors="replace")[-2000:]
                raise EngineError(f"the local Spark cluster did not start ({logs}): {tail}")
            time.sleep(0.5)
        log(f"spark: standalone cluster {cluster.url}, {workers} worker(s), UI {cluster.web_ui}")
        yield cluster
        finished = True
    finally:
        for process in reversed(processes):
            _stop(process)
    if finished:  # the logs are kept only when something went wrong
        shutil.rmtree(logs, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a process started by :func:`local_cluster` (its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=grace)
