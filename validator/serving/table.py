"""The table the workers share with the master: how many connections each worker has open, and
when its event loop last beat.

Why the connections: a customer's wallet, a load generator or a peer bank holds a keep-alive
connection and sends every request on it, so a worker serves the connections it accepted, for
as long as they live, on one core (the GIL). Left to chance, connections fall unevenly: on one
shared socket whichever worker woke first took them; with a socket per worker (SO_REUSEPORT)
the kernel hashes them. So the workers share one listening socket, and a worker that has more
connections open than another live worker leaves the socket to the others
(validator/serving/turns.py); README's Performance section has the figures.

Why the beats: a worker's event loop reads every connection the worker holds, so a loop that
stops turning (a bug, a call that never returns) freezes them all. The master kills a worker
whose beat is older than ``serve --timeout`` and starts another.

The table lives in memory mapped before the master forks, so every worker and the master see
the same words; a slot is (pid, connections, last beat).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from multiprocessing.sharedctypes import RawArray

__all__ = ["WorkerTable", "alive"]


class WorkerTable:
    """Open connections and last beats per worker, in slots shared by the processes forked
    after it is made.

    A worker claims a free slot, or one whose process is gone (a worker killed leaves its
    slot behind)."""

    def __init__(self, slots: int) -> None:
        self._pids = RawArray(ctypes.c_long, slots)
        self._conns = RawArray(ctypes.c_long, slots)
        self._beats = RawArray(ctypes.c_double, slots)  # time.monotonic(): one clock per host
        self._lock = multiprocessing.get_context("fork").Lock()

    def claim(self, pid: int) -> int:
        """Take a slot for worker ``pid``; it counts as having beaten now."""
        with self._lock:
            for slot, owner in enumerate(self._pids):
                if owner == 0 or owner == pid or not alive(owner):
                    self._conns[slot], self._beats[slot] = 0, time.monotonic()
                    self._pids[slot] = pid
                    return slot
        raise RuntimeError(f"no free slot among {len(self._pids)} for worker {pid}")

    def release(self, slot: int) -> None:
        with self._lock:
            self._pids[slot], self._conns[slot] = 0, 0

    def publish(self, slot: int, connections: int) -> None:
        self._conns[slot] = connections  # one aligned word: read whole by the others

    def beat(self, slot: int) -> None:
        self._beats[slot] = time.monotonic()

    def fewest_elsewhere(self, slot: int) -> int | None:
        """The fewest connections a live worker other than ``slot``'s has (None: no other).
        Asked whenever a worker's count changes and while it is out of turn: only the fewest
        is checked alive (one syscall), and the next fewest if it is gone."""
        others = sorted((self._conns[other], owner) for other, owner in enumerate(self._pids)
                        if other != slot and owner != 0)
        return next((n for n, owner in others if alive(owner)), None)

    def silent(self, longer_than: float) -> list[tuple[int, float]]:
        """The workers whose last beat is older than ``longer_than`` seconds, with its age."""
        now = time.monotonic()
        return [(owner, now - self._beats[slot]) for slot, owner in enumerate(self._pids)
                if owner != 0 and now - self._beats[slot] > longer_than]


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie not yet reaped counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's: a pid reused
        return True
    return True
