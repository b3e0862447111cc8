"""The gunicorn worker the validator runs: gthread, taking new connections in turn.

Why: a customer's wallet, a load generator or a peer bank holds a keep-alive connection and
sends every request on it, so a worker serves the connections it accepted, for as long as they
live, on one core (the GIL). Left to chance, connections fall unevenly: on one shared socket
whichever worker woke first took them; with a socket per worker (SO_REUSEPORT) the kernel
hashes them, and 12 connections fell 6/6, 5/7, 4/8 or 3/9 over two workers. With two workers
on two cores, HTTP payments went from 1,636 a second at 6/6 to 1,355 at 4/8, and a trivial
request from 4,235 to 2,677 at 3/9: the lighter worker idled while the other queued.

So the workers share one listening socket and a table (in memory mapped before the fork) of
how many connections each has open. A worker that has more than another live worker leaves
the socket to the others, and looks again every :data:`_ASLEEP`; it takes a connection anyway
once it has seen it wait :data:`PATIENCE` (the others may be stuck or gone).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import select
import time
from multiprocessing.sharedctypes import RawArray
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

__all__ = ["BalancedThreadWorker", "ConnectionTable", "share_table"]

PATIENCE = 0.05  # s: how long a busier worker leaves a waiting connection to the others
_ASLEEP = 0.01  # s: how often a worker out of turn looks again


class ConnectionTable:
    """Open connections per worker, in slots shared by the processes forked after it is made.

    A slot is (pid, connections); a worker claims a free slot or one whose process is gone
    (a worker killed by its timeout leaves its slot behind)."""

    def __init__(self, slots: int) -> None:
        self._pids = RawArray(ctypes.c_long, slots)
        self._conns = RawArray(ctypes.c_long, slots)
        self._lock = multiprocessing.get_context("fork").Lock()

    def claim(self, pid: int) -> int:
        with self._lock:
            for slot, owner in enumerate(self._pids):
                if owner == 0 or owner == pid or not _alive(owner):
                    self._pids[slot], self._conns[slot] = pid, 0
                    return slot
        raise RuntimeError(f"no free slot among {len(self._pids)} for worker {pid}")

    def release(self, slot: int) -> None:
        with self._lock:
            self._pids[slot], self._conns[slot] = 0, 0

    def publish(self, slot: int, connections: int) -> None:
        self._conns[slot] = connections  # one aligned word: read whole by the others

    def fewest_elsewhere(self, slot: int) -> int | None:
        """The fewest connections a live worker other than ``slot``'s has (None: no other).
        Asked on every turn of a worker's loop: only the fewest is checked alive (one
        syscall), and the next fewest if it is gone."""
        others = sorted((self._conns[other], owner) for other, owner in enumerate(self._pids)
                        if other != slot and owner != 0)
        return next((n for n, owner in others if _alive(owner)), None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's: a pid reused
        return True
    return True


# Made by the gunicorn master before it forks the workers (share_table); None otherwise.
TABLE: ConnectionTable | None = None


def share_table(workers: int) -> None:
    """Make the table the workers forked from now on share (room for their replacements)."""
    global TABLE
    TABLE = ConnectionTable(max(2 * workers, 4))


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker that takes a new connection only when its turn comes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._table: ConnectionTable | None = None  # and our slot in it
        self._slot = -1
        self._turn = True  # this worker may take the next connection
        self._waiting_since: float | None = None  # a connection we left to others waits

    def init_process(self) -> None:
        if TABLE is not None:
            self._table, self._slot = TABLE, TABLE.claim(os.getpid())
        super().init_process()

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self._turn)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self._table is not None:
            self._table.publish(self._slot, self.nr_conns)
            self._turn = self._my_turn(self._table.fewest_elsewhere(self._slot))
            if self.alive and self.nr_conns < self.worker_connections:
                self.set_accept_enabled(True)  # as far as the turn allows
            if not self._turn:  # look again soon: the others' counts move without waking us
                timeout = min(timeout, _ASLEEP)
        super().wait_for_and_dispatch_events(timeout)

    def accept(self, listener: Any) -> None:
        super().accept(listener)
        if self._table is not None:
            self._table.publish(self._slot, self.nr_conns)

    def _my_turn(self, fewest_elsewhere: int | None) -> bool:
        """Whether to take the next connection: none of the other workers has fewer open, or
        one has waited :data:`PATIENCE` for them."""
        if fewest_elsewhere is None or self.nr_conns <= fewest_elsewhere:
            self._waiting_since = None
            return True
        if not select.select(self.sockets, [], [], 0)[0]:
            self._waiting_since = None  # nobody waits
            return False
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since >= PATIENCE

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self._table is not None:
                self._table.release(self._slot)
