"""py-spy over the service processes while a bench runs: where each one's CPU went.

Each process is sampled with ``py-spy record --gil``: only the thread holding the GIL, so a
thread waiting on a socket or a lock (the event loop in ``select``, psycopg waiting for the
server) is not counted as busy. The stacks are written collapsed (``frame;frame;... count``
a line, the input of flame graph tools) to ``<directory>/<process>.txt``, and
:func:`hottest` sums them into the functions that took the most samples.

py-spy reads another process's memory: it needs ptrace (root, CAP_SYS_PTRACE, or
``kernel.yama.ptrace_scope`` 0). Sampling costs CPU of its own on the machine it measures,
so a profiled run's figures are for finding the hot spots, not for the record.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

SAMPLES_PER_SECOND = 50
_LINE_NUMBER = re.compile(r":\d+\)$")


class ProfilerError(RuntimeError):
    """py-spy is missing or could not sample a process."""


@dataclass(frozen=True)
class Hot:
    """A function's share of a process's samples: ``own`` in the function itself,
    ``total`` in it or in what it called."""

    function: str
    own: float
    total: float


def hottest(collapsed: Iterable[str], *, top: int = 15) -> list[Hot]:
    """The ``top`` functions by samples of their own, from collapsed stacks. A function is
    its name and file (``send (aiokafka/conn.py)``): the lines of one function are summed,
    and a recursive function counts once in each stack's total."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for function in set(frames):
            total[function] += count
    if not samples:
        return []
    return [
        Hot(function, own=count / samples, total=total[function] / samples)
        for function, count in own.most_common(top)
    ]


def py_spy() -> str:
    """The py-spy beside this interpreter (the project's dev dependencies install it), or
    on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfilerError("py-spy is not installed (pip install -e '.[dev]')")
    return found


class Profiler:
    """Samples each of ``pids`` (name: pid) from ``__enter__`` to ``__exit__``."""

    def __init__(self, pids: Mapping[str, int], directory: Path) -> None:
        self.pids = dict(pids)
        self.directory = directory
        self._samplers: dict[str, subprocess.Popen[bytes]] = {}

    def output(self, name: str) -> Path:
        return self.directory / f"{name}.txt"

    def log(self, name: str) -> Path:
        """What py-spy said while sampling ``name`` (its warnings when it falls behind)."""
        return self.directory / f"{name}.log"

    def __enter__(self) -> Profiler:
        executable = py_spy()
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            # An earlier run's stacks must not pass for this one's, should py-spy fail.
            self.output(name).unlink(missing_ok=True)
            with self.log(name).open("wb") as log:
                self._samplers[name] = self._sample(executable, pid, name, log)
        return self

    def _sample(
        self, executable: str, pid: int, name: str, log: BinaryIO
    ) -> subprocess.Popen[bytes]:
        # Its messages go to a file: a pipe nobody reads while the bench runs could fill up
        # with "behind in sampling" warnings and stop py-spy.
        return subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--gil",
                "--format",
                "raw",
                "--output",
                str(self.output(name)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        failures = []
        for name, sampler in self._samplers.items():
            # py-spy writes what it sampled when interrupted, as on Ctrl-C.
            if sampler.poll() is None:
                sampler.send_signal(signal.SIGINT)
            try:
                sampler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sampler.kill()
                sampler.wait()
            if not self.output(name).exists():
                said = self.log(name).read_text(errors="replace").strip()[-500:]
                failures.append(f"{name}: {said}")
        self._samplers.clear()
        if failures and exc_type is None:
            raise ProfilerError("py-spy wrote no profile for " + "; ".join(failures))

    def report(self, top: int = 15) -> dict[str, list[Hot]]:
        """Each process's hottest functions (after ``__exit__``)."""
        return {
            name: hottest(self.output(name).read_text().splitlines(), top=top)
            for name in self.pids
            if self.output(name).exists()
        }
