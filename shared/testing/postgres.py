"""A throwaway PostgreSQL cluster from the machine's own binaries, for tests and benchmarks.

``LEADFLOW_TEST_POSTGRES_URL`` wins when set. Otherwise the Debian binaries are found under
``/usr/lib/postgresql/<version>/bin`` (``make test`` installs them when missing); the cluster
lives in a temporary folder, listens on 127.0.0.1 and a free port, trades durability for
speed (fsync off: it is thrown away), and is stopped by its PID. ``initdb`` refuses to run as
root, so as root the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from shared.ports import free_port


class PostgresStartError(RuntimeError):
    pass


def find_bin_dir() -> Path:
    explicit = os.environ.get("LEADFLOW_PG_BIN")
    if explicit:
        return Path(explicit)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresStartError(
        "no PostgreSQL server binaries found: install Debian's 'postgresql' package "
        "(make test does), or set LEADFLOW_TEST_POSTGRES_URL"
    )


class LocalPostgres:
    def __init__(self, *, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.port = 0
        self.root: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path | None:
        return self.root / "postgres.log" if self.root else None

    def _run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresStartError("running as root but there is no 'postgres' user") from None
        return "postgres"

    def start(self, timeout: float = 60.0) -> str:
        self._user = self._run_as()
        self.root = Path(tempfile.mkdtemp(prefix="leadflow-pg-"))
        data = self.root / "data"
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)
        initdb = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=self._user,
            check=False,
        )
        if initdb.returncode != 0:
            raise PostgresStartError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        self.port = free_port()
        log = self.log_path
        assert log is not None
        with log.open("ab") as log_file:
            if self._user:
                entry = pwd.getpwnam(self._user)
                os.chown(log, entry.pw_uid, entry.pw_gid)
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.root}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=300",
                    "-c",
                    "shared_buffers=128MB",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self._user,
                start_new_session=True,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PostgresStartError(f"postgres exited:\n{log.read_text(errors='replace')}")
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return self.url
            except psycopg.OperationalError:
                time.sleep(0.2)
        self.stop()
        raise PostgresStartError(f"postgres not ready after {timeout}s")

    def restart(self, timeout: float = 60.0) -> None:
        """Fast shutdown and start again on the same port and data (fault tests)."""
        process = self.process
        if process is None or self.root is None:
            raise PostgresStartError("postgres is not running")
        self._signal_and_wait(process, signal.SIGINT)
        command = process.args
        with (self.root / "postgres.log").open("ab") as log_file:
            self.process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self._user,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise PostgresStartError("postgres did not come back")

    @staticmethod
    def _signal_and_wait(process: subprocess.Popen[bytes], how: signal.Signals) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, how)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop(self) -> None:
        process, self.process = self.process, None
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        if process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: sessions are cut, no waiting on clients.
            self._signal_and_wait(process, signal.SIGINT)
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
