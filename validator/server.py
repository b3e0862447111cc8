"""Production serving under gunicorn: the Flask dev server is never used.

Each worker builds its own app (and so opens LMDB) after the fork: ``preload_app`` stays off.
Workers are threaded (gthread): a worker's concurrent requests share one LMDB commit.
The outbox sender runs as one more process, a fresh interpreter (``python -m validator.sender``,
not a fork: it opens LMDB itself, and the workers forked later know nothing of it), started when
gunicorn is ready and stopped when it exits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from validator.app import create_app

__all__ = ["serve"]


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
    """Run the validator until SIGTERM or SIGINT (gunicorn shuts down gracefully)."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        # Threads, so that the requests a worker has in flight at once reach the store
        # together and share one commit and one fsync (Store.write's group commit).
        "worker_class": "gthread",
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
