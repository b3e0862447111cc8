"""Asking another bank over HTTP: the whole exchange bounded in time, the answer in size.

Why not ``requests`` alone: its timeout bounds each read of the socket, never the exchange,
and it reads whatever length the server sends. A peer that trickles its answer a byte every
few seconds (its status line, its headers or its body) holds the asking thread for as long
as it likes, and one that sends gigabytes fills our memory; a bank's outbox sender asks every
peer from one process, so one such peer would stop every delivery, and a wallet asking a
hostile bank would never return (attack 22 had a wallet read a 30 MB answer).

So every request made through :func:`ask` runs under a deadline: a watchdog thread shuts the
connection's socket down when the deadline passes, wherever the request is (sending, waiting
for the head, reading the body), and the request fails at once. The answer is read at most
``limit`` bytes, uncompressed (we ask for ``identity``: a compressed answer could unpack to
any size), and refused past that.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["MAX_ANSWER_BYTES", "Answer", "AnswerCut", "AnswerTooLarge", "AnswerTooSlow", "ask",
           "bounded_session"]

# The most an answer may carry: a page of a thousand entries, or a peer's answers to a batch
# of messages, is a few MiB; past this it is no answer of ours.
MAX_ANSWER_BYTES = 64 << 20
_READ = 1 << 16


class AnswerCut(requests.RequestException):
    """An exchange :func:`ask` ended at one of its bounds; its message says which, in words
    for an operator or a customer (the connection is closed)."""


class AnswerTooSlow(AnswerCut, requests.Timeout):
    """The exchange did not end within its deadline."""


class AnswerTooLarge(AnswerCut):
    """The answer is longer than the asker reads."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def bounded_session() -> requests.Session:
    """A session whose connections :func:`ask` can cut at their deadline."""
    session = requests.Session()
    session.headers["Accept-Encoding"] = "identity"
    adapter = _WatchedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def ask(session: requests.Session, method: str, url: str, *, seconds: float,
        limit: int = MAX_ANSWER_BYTES, **kwargs: Any) -> Answer:
    """``session.request(method, url, **kwargs)`` (``session`` from :func:`bounded_session`),
    ended within ``seconds`` and read to at most ``limit`` bytes.

    Raises:
        AnswerTooSlow: it took longer.
        AnswerTooLarge: the answer is longer, said so ahead or as it came.
        requests.RequestException: as ``requests`` raises them (connection refused...).
    """
    deadline = _Deadline(time.monotonic() + seconds)
    token = _CURRENT.set(deadline)
    try:
        with session.request(method, url, stream=True, **kwargs) as response:
            body = _read(response, limit)
        if deadline.fired:  # (a head cut short may still parse, and a body end early)
            raise AnswerTooSlow(f"no whole answer within {seconds:g} s")
        return Answer(response.status_code, body, dict(response.headers))
    except AnswerTooSlow:
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        if deadline.fired:
            raise AnswerTooSlow(f"no whole answer within {seconds:g} s") from None
        if isinstance(e, requests.RequestException):
            raise
        raise requests.ConnectionError(f"the connection failed while the answer was read: "
                                       f"{e}") from e
    finally:
        deadline.close()
        _CURRENT.reset(token)


def _read(response: requests.Response, limit: int) -> bytes:
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > limit:
        raise AnswerTooLarge(f"the answer is {int(announced)} bytes long, more than the "
                             f"{limit} read")
    body = bytearray()
    while chunk := response.raw.read1(_READ, decode_content=False):
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(f"the answer is longer than the {limit} bytes read")
    return bytes(body)


# --- the watchdog ---------------------------------------------------------------------------

class _Deadline:
    """When the current :func:`ask` must end, and the connections it used."""

    def __init__(self, at: float) -> None:
        self.at = at
        self.fired = False
        self._watches: list[list[Any]] = []

    def watch(self, connection: HTTPConnection) -> None:
        self._watches.append(_WATCHDOG.watch(self, connection))

    def close(self) -> None:
        for watch in self._watches:
            watch[3] = None  # (let go: the watchdog skips it)


_CURRENT: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "tchain_ask_deadline", default=None)


class _Watchdog:
    """One thread per process that shuts a connection's socket down at its deadline: a
    blocked read or write on it returns at once, however the peer trickles."""

    def __init__(self) -> None:
        self._seq = itertools.count()
        self._forked()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A new process (or a child of a fork, which has no thread of its parent's, and may
        have copied its lock held): nothing watched, the thread started at first use."""
        self._lock = threading.Condition()
        self._heap: list[list[Any]] = []  # [at, seq, deadline, connection or None]
        self._running = False

    def watch(self, deadline: _Deadline, connection: HTTPConnection) -> list[Any]:
        watch = [deadline.at, next(self._seq), deadline, connection]
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="ask-watchdog", daemon=True).start()
            heapq.heappush(self._heap, watch)
            if self._heap[0] is watch:  # (else the thread wakes earlier anyway)
                self._lock.notify()
        return watch

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][3] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                left = self._heap[0][0] - time.monotonic()
                if left > 0:
                    self._lock.wait(left)
                    continue
                _, _, deadline, connection = heapq.heappop(self._heap)
            deadline.fired = True
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):  # closed already
                    sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


class _Watched:
    """A connection that puts itself under the current deadline as each request begins
    (a new connection, or one kept alive from an earlier request)."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = _CURRENT.get()
        if deadline is not None:
            deadline.watch(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}
