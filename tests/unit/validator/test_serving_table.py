"""The table the validator's workers share with the master: open connections, which the workers
take turns by, and the beats of their event loops, by which the master tells a stuck one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from validator.serving.table import WorkerTable


def _gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_worker_sees_the_fewest_connections_of_the_other_live_workers():
    table = WorkerTable(4)
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine, theirs = table.claim(os.getpid()), table.claim(sibling.pid)
        assert mine != theirs
        assert table.fewest_elsewhere(mine) == 0
        table.publish(theirs, 5)
        table.publish(mine, 3)
        assert table.fewest_elsewhere(mine) == 5
        assert table.fewest_elsewhere(theirs) == 3
        dead = table.claim(_gone_pid())  # a worker killed without releasing its slot
        table.publish(dead, 0)
        assert table.fewest_elsewhere(mine) == 5  # the dead one is not counted
        table.release(theirs)
        assert table.fewest_elsewhere(mine) is None  # no other live worker
    finally:
        sibling.kill()
        sibling.wait()


def test_a_new_worker_takes_the_slot_of_one_that_is_gone():
    table = WorkerTable(2)
    first = table.claim(os.getpid())
    gone = table.claim(_gone_pid())
    table.publish(gone, 9)
    replacement = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert table.claim(replacement.pid) == gone
        assert table.fewest_elsewhere(first) == 0  # it starts with none open
        with pytest.raises(RuntimeError, match="no free slot among 2"):
            table.claim(os.getppid())
    finally:
        replacement.kill()
        replacement.wait()


def test_a_worker_whose_loop_stops_beating_is_found_silent(monkeypatch):
    table = WorkerTable(2)
    clock = [1000.0]
    monkeypatch.setattr("validator.serving.table.time.monotonic", lambda: clock[0])
    quiet, beating = table.claim(os.getpid()), table.claim(os.getppid())
    clock[0] += 5
    table.beat(beating)
    clock[0] += 26
    assert table.silent(30) == [(os.getpid(), 31.0)]  # claimed counts as a beat
    table.release(quiet)
    assert table.silent(30) == []  # a released slot is nobody's
    assert table.silent(20) == [(os.getppid(), 26.0)]
