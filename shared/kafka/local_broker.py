"""Apache Kafka itself, run from its own jars, for machines with no Docker engine.

The jars come from Maven Central through ``deploy/kafka/pom.xml`` (``mvn
dependency:copy-dependencies`` into a cache folder, once). A broker is one JVM that is both
broker and controller (KRaft, static quorum) on 127.0.0.1 and two free ports, with a freshly
formatted log dir. It is stopped by its PID; its log is kept for a failing test to show.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from shared.ports import free_port
from shared.settings import REPO_ROOT

KAFKA_POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
READY_TOPIC = "__leadflow_ready"
LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""

T = TypeVar("T")


class KafkaStartError(RuntimeError):
    """The local broker could not be fetched, formatted or started."""


def run_coroutine_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=target, name="leadflow-sync-bridge")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def kafka_version(pom: Path = KAFKA_POM) -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom.read_text())
    if not match:
        raise KafkaStartError(f"{pom} does not pin <kafka.version>")
    return match.group(1).strip()


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding: the form Kafka's StorageTool wants.

    Like Kafka's own ``Uuid.randomUuid``, never one that starts with ``-``: a command line
    would read it as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_jars(cache_dir: Path, pom: Path = KAFKA_POM) -> Path:
    """The folder of the broker's jars, fetched with Maven the first time."""
    if not pom.exists():
        raise KafkaStartError(f"no {pom}: the local broker needs the repository's deploy/ folder")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    home = cache_dir / "kafka" / f"{kafka_version(pom)}-{digest}"
    libs = home / "libs"
    marker = home / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaStartError("Maven (mvn) is not installed: it fetches the Kafka jars")
    with _file_lock(home.parent / f".{home.name}.lock"):
        if marker.exists():  # another process fetched them while we waited
            return libs
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise KafkaStartError(
                f"mvn could not fetch the Kafka jars (exit {completed.returncode}):\n"
                f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(kafka_version(pom))
    return libs


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM the broker if we die without stopping it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    os.setsid()


class LocalKafka:
    """One KRaft broker+controller JVM on 127.0.0.1, from the cached jars."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        runs_dir: Path,
        heap: str = "512m",
        partitions: int = 6,
        keep_runs: int = 5,
        sasl_users: dict[str, str] | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.runs_dir = runs_dir
        self.heap = heap
        self.partitions = partitions
        self.keep_runs = keep_runs
        self.process: subprocess.Popen[bytes] | None = None
        self.work_dir: Path | None = None
        self.broker_port = 0
        self.controller_port = 0
        # Users of an extra SASL_PLAINTEXT listener (mechanism PLAIN), for testing clients
        # that authenticate; None: no such listener.
        self.sasl_users = sasl_users
        self.sasl_port = 0
        self._command: list[str] = []

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def sasl_bootstrap_servers(self) -> str | None:
        return f"127.0.0.1:{self.sasl_port}" if self.sasl_users else None

    @property
    def log_path(self) -> Path | None:
        return self.work_dir / "broker.log" if self.work_dir else None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _server_properties(self, log_dirs: Path) -> str:
        broker, controller = self.broker_port, self.controller_port
        listeners = [f"PLAINTEXT://127.0.0.1:{broker}", f"CONTROLLER://127.0.0.1:{controller}"]
        advertised = [f"PLAINTEXT://127.0.0.1:{broker}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        sasl: list[str] = []
        if self.sasl_users:
            listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}")
            advertised.append(f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}")
            protocols.append("SASL_PLAINTEXT:SASL_PLAINTEXT")
            users = " ".join(
                f'user_{name}="{password}"' for name, password in self.sasl_users.items()
            )
            sasl = [
                "sasl.enabled.mechanisms=PLAIN",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};",
            ]
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners={','.join(listeners)}",
                f"advertised.listeners={','.join(advertised)}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                f"listener.security.protocol.map={','.join(protocols)}",
                *sasl,
                f"log.dirs={log_dirs}",
                f"num.partitions={self.partitions}",
                # One broker: every internal topic has one replica.
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "min.insync.replicas=1",
                "group.initial.rebalance.delay.ms=0",
                # Topics are created on purpose (the catalog), as on a production cluster.
                "auto.create.topics.enable=false",
                "delete.topic.enable=true",
                "log.flush.interval.messages=9223372036854775807",
                "",
            ]
        )

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise KafkaStartError("Java is not installed: the local Kafka broker needs a JRE 17+")
        return java

    def _prune_old_runs(self) -> None:
        runs = sorted(p for p in self.runs_dir.glob("run-*") if p.is_dir())
        for old in runs[: max(0, len(runs) - self.keep_runs)]:
            shutil.rmtree(old, ignore_errors=True)

    def start(self, timeout: float = 120.0) -> str:
        if self.process is not None:
            return self.bootstrap_servers
        libs = ensure_jars(self.cache_dir)
        java = self._java()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._prune_old_runs()
        self.work_dir = self.runs_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.broker_port, self.controller_port, self.sasl_port = sorted(ports)
        data = self.work_dir / "data"
        properties = self.work_dir / "server.properties"
        properties.write_text(self._server_properties(data))
        log4j = self.work_dir / "log4j2.properties"
        assert self.log_path is not None
        log4j.write_text(LOG4J2_PROPERTIES.format(log_path=self.log_path))
        classpath = f"{libs}/*"
        jvm = [
            java,
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={log4j}",
            "-Djava.awt.headless=true",
            "-cp",
            classpath,
        ]
        formatted = subprocess.run(
            [
                *jvm,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={new_cluster_id()}",
                "-c",
                str(properties),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if formatted.returncode != 0:
            raise KafkaStartError(
                f"kafka-storage format failed:\n{formatted.stdout}\n{formatted.stderr}"
            )
        self._command = [*jvm, "kafka.Kafka", str(properties)]
        self._launch()
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap_servers

    def _launch(self) -> None:
        assert self.work_dir is not None
        with (self.work_dir / "console.log").open("ab") as console:
            self.process = subprocess.Popen(
                self._command,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (started from the main thread)
            )

    def restart(self, *, crash: bool = False, timeout: float = 120.0) -> None:
        """Stop the JVM (SIGKILL when ``crash``) and start it again on the same ports and data."""
        process = self.process
        if process is None:
            raise KafkaStartError("the broker is not running")
        self._terminate(process, signal.SIGKILL if crash else signal.SIGTERM)
        self._launch()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        async def try_create_topic() -> None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers, request_timeout_ms=5000
            )
            await admin.start()
            try:
                await admin.create_topics([NewTopic(READY_TOPIC, 1, 1)])
            except TopicAlreadyExistsError:
                pass
            finally:
                await admin.close()

        deadline = time.monotonic() + timeout
        # Every refused connection while the JVM boots would be logged as an error.
        quiet = logging.getLogger("aiokafka")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            self._poll_ready(try_create_topic, deadline)
        finally:
            quiet.setLevel(level)

    def _poll_ready(
        self, try_create_topic: Callable[[], Coroutine[Any, Any, None]], deadline: float
    ) -> None:
        from aiokafka.errors import KafkaError

        last_error: Exception | None = None
        timeout = deadline - time.monotonic()
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise KafkaStartError(
                    f"the Kafka broker exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                run_coroutine_blocking(try_create_topic())
                return
            except (TimeoutError, KafkaError, OSError) as error:
                last_error = error
                time.sleep(0.5)
        raise KafkaStartError(
            f"the Kafka broker was not ready after {timeout:.0f}s ({last_error!r}):\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 60) -> str:
        parts = []
        if self.work_dir:
            for name in ("console.log", "broker.log"):
                path = self.work_dir / name
                if path.exists():
                    text = path.read_text(errors="replace").splitlines()[-lines:]
                    parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)

    def _terminate(
        self, process: subprocess.Popen[bytes], how: signal.Signals, timeout: float = 30.0
    ) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, how)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop(self) -> None:
        """Stop by PID: SIGTERM for a clean shutdown, SIGKILL if it will not go."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        self._terminate(process, signal.SIGTERM)
        # Keep the logs, drop the data.
        if self.work_dir:
            shutil.rmtree(self.work_dir / "data", ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
