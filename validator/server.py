"""Production serving under gunicorn: the Flask dev server is never used.

Each worker builds its own app (and so opens LMDB) after the fork: ``preload_app`` stays off.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from validator.app import create_app

__all__ = ["serve"]


class _ValidatorApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, data: str, options: dict[str, Any]) -> None:
        self._data = data
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app({"DATA_DIR": self._data})


def serve(data: str, *, host: str, port: int, workers: int, timeout: int = 30,
          access_log: bool = False) -> None:
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
    _ValidatorApplication(data, options).run()
