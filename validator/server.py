"""Production serving under gunicorn: the Flask dev server is never used.

Each worker builds its own app (and so opens LMDB) after the fork: ``preload_app`` stays off.
The outbox sender runs as one more process, spawned (not forked: the gunicorn master never opens
LMDB, and a spawned child starts clean) when gunicorn is ready and stopped when it exits.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from gunicorn.app.base import BaseApplication

from validator.app import create_app
from validator.sender import run_sender

__all__ = ["serve"]


class _ValidatorApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, data: str, options: dict[str, Any], app_config: dict[str, Any]) -> None:
        self._data = data
        self._options = options
        self._app_config = app_config
        self._sender: multiprocessing.process.BaseProcess | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)
        self.cfg.set("when_ready", self._start_sender)
        self.cfg.set("on_exit", self._stop_sender)

    def load(self) -> Any:
        return create_app({"DATA_DIR": self._data, **self._app_config})

    def _start_sender(self, _server: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._sender = context.Process(target=run_sender, args=(self._data, self._app_config),
                                       name="tchain-sender", daemon=False)
        self._sender.start()

    def _stop_sender(self, _server: Any) -> None:
        if self._sender is not None and self._sender.is_alive():
            self._sender.terminate()
            self._sender.join(10)


def serve(data: str, *, host: str, port: int, workers: int, timeout: int = 30,
          access_log: bool = False, app_config: dict[str, Any] | None = None) -> None:
    """Run the validator until SIGTERM or SIGINT (gunicorn shuts down gracefully)."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
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
