"""What ``GET /health`` says of the outbox sender: a sender killed and not yet reaped by the
master is a zombie, and a zombie is not a running sender."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from validator.serving.supervision import SenderStatus, running
from validator.serving.table import alive


def _zombie() -> subprocess.Popen[bytes]:
    """A child killed and not reaped: what the master's sender is between its death and the
    master's waitpid."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/stat", "rb") as stat:
            if stat.read().rpartition(b")")[2].split()[0] == b"Z":
                return child
        time.sleep(0.01)
    raise AssertionError("the child never became a zombie")


def test_a_killed_sender_not_yet_reaped_is_reported_gone():
    child = _zombie()
    pid = child.pid
    try:
        assert alive(pid)  # the pid still exists: a worker slot is not taken from it
        assert not running(pid)
        status = SenderStatus()
        status.started(pid, restart=False)
        assert status.report()["alive"] is False
        assert status.report()["pid"] == pid
    finally:
        child.wait()
    assert not running(pid)


def test_a_running_process_is_running():
    assert running(os.getpid())
    status = SenderStatus()
    status.started(os.getpid(), restart=False)
    assert status.report()["alive"] is True
