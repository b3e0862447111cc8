"""The master process of ``tchain validator serve``: it holds the data directory and the
listening socket, forks the workers and the outbox sender, and keeps them running.

- One bank, one master: the master takes an exclusive lock on ``serve.lock`` in the data
  directory for its life. Its children inherit the lock's descriptor, so the directory stays
  locked until the last process that uses its store is gone.
- The workers share the master's listening socket (validator/serving/turns.py). A worker that
  dies is started again; one whose event loop has not beaten for ``timeout`` s is killed
  (SIGKILL) and started again. A worker that cannot build the app stops the whole server.
- The outbox sender runs as a process of its own; when it dies it is started again after a
  backoff (validator/serving/supervision.py). Each death and each start is logged.
- The workers count what they answer in files of the bank's ``metrics/`` folder, emptied at
  each start (validator/metrics.py).
- Every child is forked, never a new interpreter: nothing is imported from the working
  directory, and the children start with the modules already loaded. The master never opens
  the store, so no LMDB environment crosses a fork.
- SIGTERM or SIGINT: the children are asked to stop (SIGTERM), are given :data:`STOP_WAIT` s to
  finish what they are doing, and are killed if they have not; then the master exits.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import resource
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from validator.errors import AddressInUseError, DataDirInUseError
from validator.metrics import prepare_folder
from validator.serving.connection import Limits
from validator.serving.sender_process import run_sender
from validator.serving.supervision import STOP_SIGNALS, Backoff, SenderStatus
from validator.serving.table import WorkerTable
from validator.serving.worker import BOOT_FAILED, GRACEFUL, WorkerOptions, run_worker

__all__ = ["LOCK_FILE", "Master"]

log = logging.getLogger("tchain.serving")

LOCK_FILE = "serve.lock"
BACKLOG = 2048
STOP_WAIT = GRACEFUL + 5.0  # s the children are given to stop before they are killed
_TICK = 1.0  # s between two looks at the children when no signal comes


class _Child:
    """A process the master keeps running: a worker or the outbox sender."""

    def __init__(self, kind: str, main: Callable[[], int]) -> None:
        self.kind = kind
        self.main = main
        self.backoff = Backoff()
        self.pid = 0
        self.started = 0.0
        self.starts = 0
        self.due = 0.0  # when to start it (again), while pid is 0


class Master:
    """Serve the bank in ``data`` on ``host:port``.

    Made in two steps so that the command can refuse at once, in one sentence, what would stop
    it: making one takes the data directory's lock and binds the socket; :meth:`run` forks and
    supervises.

    Raises:
        DataDirInUseError: another ``serve`` runs on ``data``.
        AddressInUseError: something already listens on ``host:port``.
    """

    def __init__(self, data: str, *, host: str, port: int, workers: int, threads: int = 8,
                 timeout: float = 30, access_log: bool = False,
                 app_config: dict[str, Any] | None = None, limits: Limits | None = None) -> None:
        self._lock = _lock(Path(data))
        self._listener = _listen(host, port)
        # Emptied now that no other process of this bank can be counting there.
        app_config = {**(app_config or {}), "METRICS_DIR": prepare_folder(data)}
        self._timeout = timeout
        self._sender_status = SenderStatus()
        self._options = WorkerOptions(
            data=data, app_config=app_config, threads=threads,
            limits=limits or Limits(), access_log=access_log,
            table=WorkerTable(max(2 * workers, 4)), sender=self._sender_status)
        self._children = [_Child("worker", self._worker_main) for _ in range(workers)]
        self._children.append(_Child("outbox sender", self._sender_main))
        self._stopping = False
        self._failed = False
        self._wakeup = (-1, -1)

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit code (1: a worker could not start)."""
        _allow_many_connections()
        self._wakeup = os.pipe()
        for fd in self._wakeup:
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self._wakeup[1])
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop through the pipe
        try:
            while not self._stopping:
                self._start_due()
                self._wait(_TICK)
                self._reap()
                self._kill_silent_workers()
            self._stop_children()
        finally:
            # Stopping is decided: a late SIGTERM (an operator's second, the group's) must not
            # kill the interpreter as it exits, which restores the default handlers.
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            signal.set_wakeup_fd(-1)
            for fd in self._wakeup:
                os.close(fd)
            self._listener.close()
        return 1 if self._failed else 0

    def _stop(self, signum: int, _frame: Any) -> None:
        if not self._stopping:
            log.info("%s: stopping", signal.Signals(signum).name)
        self._stopping = True

    def _wait(self, seconds: float) -> None:
        """Sleep until a signal comes (a child died, or we are told to stop) or ``seconds``."""
        ready, _, _ = select.select([self._wakeup[0]], [], [], seconds)
        if ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wakeup[0], 512):
                    pass

    # --- the children -------------------------------------------------------------------

    def _start_due(self) -> None:
        now = time.monotonic()
        for child in self._children:
            if child.pid == 0 and child.due <= now and not self._stopping:
                self._fork(child)

    def _fork(self, child: _Child) -> None:
        restart = child.starts > 0
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self._become_child()
                code = child.main()
            except BaseException:
                log.exception("%s %d failed", child.kind, os.getpid())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        child.pid, child.started = pid, time.monotonic()
        child.starts += 1
        if child.kind == "outbox sender":
            self._sender_status.started(pid, restart=restart)
        if restart:
            log.warning("%s %d started again (start %d)", child.kind, pid, child.starts)

    def _become_child(self) -> None:
        """Forget the master's signal handling in a child just forked."""
        signal.set_wakeup_fd(-1)
        for fd in self._wakeup:
            os.close(fd)
        for sig in (*STOP_SIGNALS, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)

    def _worker_main(self) -> int:
        return run_worker(self._listener, self._options)

    def _sender_main(self) -> int:
        self._listener.close()  # the sender serves nothing
        master = os.getppid()

        def heartbeat() -> bool:
            self._sender_status.beat()
            return os.getppid() == master

        run_sender(self._options.data, self._options.app_config, heartbeat=heartbeat)
        return 0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = next((c for c in self._children if c.pid == pid), None)
            if child is None:
                continue
            child.pid = 0
            if child.kind == "outbox sender":
                self._sender_status.gone()
            if self._stopping:
                continue
            if child.kind == "worker" and os.WIFEXITED(status) and \
                    os.WEXITSTATUS(status) == BOOT_FAILED:
                log.error("worker %d could not start (its log is above); stopping", pid)
                self._failed = self._stopping = True
                continue
            wait = child.backoff.after(time.monotonic() - child.started)
            child.due = time.monotonic() + wait
            log.error("%s %d %s; starting another in %.1f s", child.kind, pid,
                      _how_it_ended(status), wait)

    def _kill_silent_workers(self) -> None:
        workers = {c.pid for c in self._children if c.kind == "worker" and c.pid}
        for pid, silent in self._options.table.silent(self._timeout):
            if pid in workers:
                log.error("worker %d: its event loop has not beaten for %.0f s (--timeout "
                          "%g); killing it", pid, silent, self._timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _stop_children(self) -> None:
        for child in self._children:
            if child.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        while any(c.pid for c in self._children) and time.monotonic() < deadline:
            self._wait(0.1)
            self._reap()
        for child in self._children:
            if child.pid:
                log.error("%s %d did not stop within %.0f s; killing it", child.kind,
                          child.pid, STOP_WAIT)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child.pid, 0)
                child.pid = 0


def _lock(data: Path) -> int:
    """Lock the data directory for this server's life; the descriptor is never closed."""
    fd = os.open(data / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise DataDirInUseError(f"{data} is already served by another `tchain validator "
                                f"serve` (pid {holder}); stop it first") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise AddressInUseError(f"{host}:{port} is already in use; stop what listens "
                                    "there or pass another --port") from e
        raise
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def _allow_many_connections() -> None:
    """Raise this process's descriptor limit to the most allowed (the workers inherit it):
    every open connection is a descriptor, and slow ones are held for seconds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
