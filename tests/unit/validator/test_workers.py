"""The table of open connections the validator's workers take turns by."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from validator.workers import ConnectionTable


def _gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_worker_sees_the_fewest_connections_of_the_other_live_workers():
    table = ConnectionTable(4)
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
    table = ConnectionTable(2)
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
