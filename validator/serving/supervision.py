"""What the master needs to keep its processes running: when to start a dead one again, and what
the outbox sender is doing, in memory the workers read to answer ``GET /health``."""

from __future__ import annotations

import ctypes
import signal
import time
from multiprocessing.sharedctypes import RawValue
from typing import Any

from validator.serving.table import alive

__all__ = ["STOP_SIGNALS", "Backoff", "SenderStatus", "running"]

# What stops every serving process gracefully (the master forwards them to its children).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


class Backoff:
    """The wait before starting a process that died: ``first`` s, doubled at each death that
    follows soon after a start, up to ``most``; back to ``first`` once one has lived ``most``
    s (a process that dies at once, again and again, is not started in a tight loop, and one
    that died after a long life is started again at once, or nearly)."""

    def __init__(self, first: float = 0.5, most: float = 30.0) -> None:
        self.first = first
        self.most = most
        self._next = first

    def after(self, lived: float) -> float:
        """The wait before the next start of a process that died after ``lived`` s."""
        if lived >= self.most:
            self._next = self.first
        wait = self._next
        self._next = min(self._next * 2, self.most)
        return wait


class _SenderFields(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_long), ("restarts", ctypes.c_long),
                ("beat", ctypes.c_double)]


class SenderStatus:
    """The outbox sender's pid (0 while none runs), how many times the master started it again,
    and when it last began a round (time.monotonic()); in memory mapped before the master
    forks, so the master writes the first two, the sender the beat, and the workers read all
    three."""

    def __init__(self) -> None:
        self._fields = RawValue(_SenderFields)

    def started(self, pid: int, *, restart: bool) -> None:
        self._fields.beat = time.monotonic()
        self._fields.pid = pid
        if restart:
            self._fields.restarts += 1

    def gone(self) -> None:
        self._fields.pid = 0

    def beat(self) -> None:
        self._fields.beat = time.monotonic()

    @property
    def restarts(self) -> int:
        return int(self._fields.restarts)

    def report(self) -> dict[str, Any]:
        """``{"alive", "pid", "restarts", "last_beat_ms_ago"}`` for ``GET /health``."""
        pid = int(self._fields.pid)
        return {"alive": pid != 0 and running(pid), "pid": pid or None,
                "restarts": int(self._fields.restarts),
                "last_beat_ms_ago": int((time.monotonic() - self._fields.beat) * 1000)}


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited: a killed sender stays a zombie until
    the master reaps it, and ``/health`` must not call it alive meanwhile. Where there is no
    ``/proc`` to tell a zombie by, a zombie counts as running."""
    if not alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[:1]
    except FileNotFoundError:  # gone since, or no /proc on this system
        return alive(pid)
    except OSError:
        return True
    return state != [b"Z"]
