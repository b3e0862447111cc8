"""A worker takes new connections off the shared listening socket only when its turn comes.

Its turn: no other live worker has fewer connections open (validator/serving/table.py says
why). Out of turn, it stops watching the socket and looks again every :data:`ASLEEP` (the
others' counts move without waking it), every :data:`ASLEEP_WHILE_WAITING` while connections
wait (in a burst the workers take turns at that pace); it takes a connection anyway once it
has seen one wait :data:`PATIENCE`, since the others may be stuck or gone.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import select
import socket
import time
from collections.abc import Callable

from validator.serving.table import WorkerTable

__all__ = ["ASLEEP", "ASLEEP_WHILE_WAITING", "PATIENCE", "Acceptor"]

log = logging.getLogger("tchain.serving")

PATIENCE = 0.05  # s: how long a busier worker leaves a waiting connection to the others
ASLEEP = 0.01  # s: how often a worker out of turn looks again
ASLEEP_WHILE_WAITING = 0.001  # s: ... while connections wait to be taken
OUT_OF_DESCRIPTORS = 0.5  # s without accepting after the process ran out of descriptors
_NO_ROOM = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Acceptor:
    """Accepts connections on ``listener`` in turn with the other workers of ``table`` and
    hands each to ``connected``; the worker says when one is closed."""

    def __init__(self, listener: socket.socket, table: WorkerTable, slot: int,
                 connected: Callable[[socket.socket], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener = listener
        self._table = table
        self._slot = slot
        self._connected = connected
        self.connections = 0
        self._watching = False
        self._stopped = False
        self._again: asyncio.TimerHandle | None = None  # the next look while out of turn
        self._waiting_since: float | None = None  # a connection left to others waits

    def start(self) -> None:
        self._take_turn()

    def stop(self) -> None:
        """Take no more connections (the worker is stopping)."""
        self._stopped = True
        self._watch(False)
        if self._again is not None:
            self._again.cancel()

    def closed(self) -> None:
        """One of this worker's connections is closed."""
        self.connections -= 1
        self._take_turn()

    def _take_turn(self) -> None:
        self._table.publish(self._slot, self.connections)
        if self._stopped:
            return
        turn = self._my_turn(self._table.fewest_elsewhere(self._slot))
        self._watch(turn)
        if not turn:
            self._look_again(ASLEEP if self._waiting_since is None else ASLEEP_WHILE_WAITING)

    def _look_again(self, delay: float) -> None:
        if self._again is None:
            self._again = self._loop.call_later(delay, self._looked_again)

    def _looked_again(self) -> None:
        self._again = None
        self._take_turn()

    def _my_turn(self, fewest_elsewhere: int | None) -> bool:
        """Whether to take the next connection: none of the other workers has fewer open, or
        one has waited :data:`PATIENCE` for them."""
        if fewest_elsewhere is None or self.connections <= fewest_elsewhere:
            self._waiting_since = None
            return True
        if not select.select([self._listener], [], [], 0)[0]:
            self._waiting_since = None  # nobody waits
            return False
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        return now - self._waiting_since >= PATIENCE

    def _watch(self, on: bool) -> None:
        if on == self._watching:
            return
        if on:
            self._loop.add_reader(self._listener, self._accept)
        else:
            self._loop.remove_reader(self._listener)
        self._watching = on

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up
        except OSError as e:
            if e.errno not in _NO_ROOM:
                raise
            log.error("cannot accept a connection: %s; trying again in %.1f s", e.strerror,
                      OUT_OF_DESCRIPTORS)
            self._watch(False)
            self._look_again(OUT_OF_DESCRIPTORS)
            return
        self.connections += 1
        self._connected(sock)
        self._take_turn()
