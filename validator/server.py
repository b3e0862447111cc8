"""Production serving under gunicorn: the Flask dev server is never used.

Each worker builds its own app (and so opens LMDB) after the fork: ``preload_app`` stays off.
Workers are threaded (gthread): a worker's concurrent requests share one LMDB commit.
They share one listening socket and take new connections in turn (validator/workers.py), so
keep-alive clients are spread evenly over them.
The outbox sender runs as one more process, a fresh interpreter (``python -m validator.sender``,
not a fork: it opens LMDB itself, and the workers forked later know nothing of it), started when
gunicorn is ready and stopped when it exits.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from validator.app import create_app
from validator.errors import AddressInUseError
from validator.workers import share_table

__all__ = ["check_free", "serve"]


class _ValidatorApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, data: str, options: dict[str, Any], app_config: dict[str, Any]) -> None:
        self._data = data
        self._options = options
        self._app_config = app_config
        self._sender: subprocess.Popen[bytes] | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", self._start_sender)
        self.cfg.set("on_exit", self._stop_sender)

    def load(self) -> Any:
        return create_app({"DATA_DIR": self._data, **self._app_config})

    def _start_sender(self, _server: Any) -> None:
        self._sender = subprocess.Popen(
            [sys.executable, "-m", "validator.sender", self._data, json.dumps(self._app_config)])

    def _stop_sender(self, _server: Any) -> None:
        if self._sender is not None and self._sender.poll() is None:
            self._sender.terminate()
            try:
                self._sender.wait(10)
            except subprocess.TimeoutExpired:
                self._sender.kill()


def serve(data: str, *, host: str, port: int, workers: int, threads: int = 8, timeout: int = 30,
          access_log: bool = False, app_config: dict[str, Any] | None = None) -> None:
    """Run the validator until SIGTERM or SIGINT (gunicorn shuts down gracefully).

    Raises:
        AddressInUseError: something already listens on ``host:port``.
    """
    check_free(host, port)
    share_table(workers)
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        # Threads, so that the requests a worker has in flight at once reach the store
        # together and share one commit and one fsync (Store.write's group commit).
        "worker_class": "validator.workers.BalancedThreadWorker",
        "threads": threads,
        "backlog": 2048,
        "timeout": timeout,
        "graceful_timeout": 10,
        "keepalive": 5,
        "preload_app": False,
        "errorlog": "-",
        "loglevel": "info",
        "accesslog": "-" if access_log else None,
        "proc_name": "tchain-validator",
    }
    _ValidatorApplication(data, options, app_config or {}).run()


def check_free(host: str, port: int) -> None:
    """Refuse an address something already listens on, at once and in one sentence (gunicorn
    would try again for five seconds, then log its own error). The probe binds without
    SO_REUSEPORT, so it fails against any listener, reuse-port or not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no listener
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise AddressInUseError(f"{host}:{port} is already in use; stop what listens "
                                        "there or pass another --port") from e
            raise
