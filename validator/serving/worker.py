"""A worker process: one asyncio event loop that holds every connection the worker accepted and
reads each request whole (validator/serving/connection.py), and a pool of threads that run the
Flask app on complete requests (validator/serving/wsgi.py).

The loop beats in the shared table once a second, so the master can tell a worker whose loop
is stuck; a worker whose master is gone stops by itself. SIGTERM or SIGINT stop it gently: it
takes no new connection, closes the idle ones, lets every request in progress finish (for
:data:`GRACEFUL` s at most), then exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

from validator.app import create_app
from validator.serving.connection import HTTPConnection, Limits
from validator.serving.supervision import STOP_SIGNALS, SenderStatus
from validator.serving.table import WorkerTable
from validator.serving.turns import Acceptor
from validator.serving.wsgi import WSGIResponder, started_pool

__all__ = ["BOOT_FAILED", "GRACEFUL", "WorkerOptions", "run_worker"]

log = logging.getLogger("tchain.serving")

BOOT_FAILED = 3  # the exit code of a worker that could not build the app: the master stops
BEAT_EVERY = 1.0  # s
GRACEFUL = 10.0  # s a stopping worker gives the requests in progress


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker is started with (the same for all, made by the master)."""

    data: str
    app_config: dict[str, Any]
    threads: int
    limits: Limits
    access_log: bool
    table: WorkerTable
    sender: SenderStatus


def run_worker(listener: socket.socket, options: WorkerOptions) -> int:
    """The main of a worker process, forked by the master; returns its exit code."""
    slot = options.table.claim(os.getpid())
    try:
        try:
            app = create_app({"DATA_DIR": options.data, **options.app_config})
        except Exception:
            log.exception("worker %d cannot build the app", os.getpid())
            return BOOT_FAILED
        app.extensions["tchain.sender"] = options.sender
        asyncio.run(_Worker(listener, app, options, slot).run())
        return 0
    finally:
        options.table.release(slot)


class _Worker:
    def __init__(self, listener: socket.socket, app: Any, options: WorkerOptions,
                 slot: int) -> None:
        self._listener = listener
        self._app = app
        self._options = options
        self._slot = slot
        self._master = os.getppid()
        self._connections: dict[asyncio.Task[None], HTTPConnection] = {}
        metrics = app.extensions["tchain.metrics"]
        self._refused = lambda status: metrics.answered("(server)", status)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop.set)
        pool = started_pool(self._options.threads)
        host, port = self._listener.getsockname()[:2]
        self._respond = WSGIResponder(self._app, pool, server=(str(host), int(port)))
        self._acceptor = Acceptor(self._listener, self._options.table, self._slot,
                                  self._connected)
        self._acceptor.start()
        beating = loop.create_task(self._beat(stop))
        try:
            await stop.wait()
            self._acceptor.stop()
            for connection in self._connections.values():
                connection.close_when_idle()
            if self._connections:
                await asyncio.wait(list(self._connections), timeout=GRACEFUL)
            for task in self._connections:
                task.cancel()
        finally:
            beating.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            _ignore_further_stops(loop)

    def _connected(self, sock: socket.socket) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(sock))
        task.add_done_callback(self._closed)

    async def _serve(self, sock: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError:  # the client went away before its connection was set up
            sock.close()
            return
        connection = HTTPConnection(reader, writer, self._respond, self._options.limits,
                                    access_log=self._options.access_log,
                                    refused=self._refused)
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = connection
        await connection.serve()

    def _closed(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        self._acceptor.closed()
        if not task.cancelled() and task.exception() is not None:
            log.error("a connection failed", exc_info=task.exception())

    async def _beat(self, stop: asyncio.Event) -> None:
        while True:
            self._options.table.beat(self._slot)
            if os.getppid() != self._master:
                log.error("worker %d: the master is gone; stopping", os.getpid())
                stop.set()
                return
            await asyncio.sleep(BEAT_EVERY)




def _ignore_further_stops(loop: asyncio.AbstractEventLoop) -> None:
    """Leave the stop signals ignored before the loop closes: the group's SIGTERM and the
    master's arrive together, and one that comes after the loop closed its wakeup pipe but
    before it dropped its handlers is written to a closed descriptor (a traceback in the log).
    The signals are blocked while the handlers change hands, so none meets the default."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
