"""The bench's profiler: collapsed stacks summed into the hottest functions, and py-spy
sampling a real process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.profiling import Hot, Profiler, ProfilerError, hottest


def test_a_function_s_own_samples_are_those_it_was_on_top_of_the_stack_for() -> None:
    stacks = [
        "main (app.py:1);handle (app.py:10);parse (json.py:5) 6",
        "main (app.py:1);handle (app.py:10);write (db.py:7) 3",
        "main (app.py:1);handle (app.py:12) 1",
    ]

    assert hottest(stacks) == [
        Hot("parse (json.py)", own=0.6, total=0.6),
        Hot("write (db.py)", own=0.3, total=0.3),
        Hot("handle (app.py)", own=0.1, total=1.0),
    ]


def test_the_lines_of_one_function_count_as_one_function() -> None:
    stacks = ["main (app.py:1);loop (app.py:20) 2", "main (app.py:1);loop (app.py:21) 2"]

    assert hottest(stacks) == [Hot("loop (app.py)", own=1.0, total=1.0)]


def test_a_recursive_function_counts_once_in_each_stack_s_total() -> None:
    stacks = ["walk (tree.py:3);walk (tree.py:3);walk (tree.py:4) 4", "main (app.py:1) 4"]

    by_function = {hot.function: hot for hot in hottest(stacks)}

    assert by_function["walk (tree.py)"] == Hot("walk (tree.py)", own=0.5, total=0.5)


def test_only_the_top_functions_are_answered_and_unreadable_lines_are_skipped() -> None:
    stacks = ["", "no count here", "a (x.py:1) 5", "b (x.py:1) 3", "c (x.py:1) 2", "d (x.py:1) x"]

    assert [hot.function for hot in hottest(stacks, top=2)] == ["a (x.py)", "b (x.py)"]
    assert hottest(["", "garbage"]) == []


BUSY = textwrap.dedent(
    """
    import sys, time

    def spin_for_the_profiler(until):
        total = 0
        while time.monotonic() < until:
            total += sum(range(1000))
        return total

    print("ready", flush=True)
    spin_for_the_profiler(time.monotonic() + 60)
    """
)


def test_the_profiler_samples_a_running_process_and_finds_where_it_spins(tmp_path: Path) -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE)
    try:
        assert busy.stdout is not None
        assert busy.stdout.readline() == b"ready\n"
        profiler = Profiler({"busy": busy.pid}, tmp_path / "profiles")
        try:
            with profiler:
                time.sleep(2)
        except ProfilerError as error:
            refused = ("permission", "not permitted", "ptrace")
            if any(reason in str(error).lower() for reason in refused):
                pytest.skip(f"py-spy may not read other processes here: {error}")
            raise
    finally:
        busy.kill()
        busy.wait()

    (hot, *_) = profiler.report()["busy"]
    assert hot.function.startswith("spin_for_the_profiler (")
    assert hot.total > 0.9
    assert profiler.output("busy").read_text().count("spin_for_the_profiler") >= 1


def test_a_process_that_cannot_be_sampled_is_an_error_naming_it(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    profiler = Profiler({"gone": gone.pid}, tmp_path)
    # An earlier run's stacks for the same name do not pass for this run's.
    profiler.output("gone").write_text("main (app.py:1) 10\n")

    with pytest.raises(ProfilerError, match="no profile for gone"), profiler:
        time.sleep(0.5)
