"""Run a real validator on loopback as a child process: for ``tchain demo`` and the tests.

The bank is a real ``tchain validator serve`` (its master, workers and outbox sender, LMDB) on
127.0.0.1 and a free port; stopping it terminates the whole process group, so no worker
outlives it. The server runs as ``python -P``: nothing is imported from the working directory,
whatever folders it holds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import requests

from cli.errors import CliError
from validator.config import BankConfig, init_bank

__all__ = ["LocalBank", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBank:
    """A validator initialised in ``data`` and served on 127.0.0.1.

    Use as a context manager; ``start()`` and ``stop()`` may be called again to restart it.
    With ``public_url`` the bank's config (what its well-known tells peers) names that URL, a
    fault proxy in the tests, while it listens on a port of its own (``url``); ``extra_args``
    go to ``tchain validator serve``.
    """

    def __init__(self, data: Path, name: str, *, workers: int = 2,
                 assets: tuple[str, ...] = ("USD",), log: Path | None = None,
                 settle_deadline: float | None = None, fault: str | None = None,
                 public_url: str | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.data = data
        self.name = name
        self.workers = workers
        self.settle_deadline = settle_deadline
        self.fault = fault
        self.extra_args = extra_args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or data.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        if not (data / "config.json").exists():
            init_bank(data, name=name, url=public_url or self.url, assets=assets)
        self.config = BankConfig.load(data)
        if public_url is None:
            self.url = self.config.url
            self.port = self.config.port
        # else: it listens on self.url while peers reach it at its public URL (a proxy).

    def start(self, timeout: float = 20.0) -> LocalBank:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "cli", "validator", "serve", "--data", str(self.data),
                 "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers), *self._extra_args()],
                stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CliError(f"the validator {self.name} exited with code "
                               f"{self.process.returncode}; see {self.log}")
            try:
                if requests.get(f"{self.url}/.well-known/tchain.json", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise CliError(f"the validator {self.name} did not answer within {timeout} s; "
                       f"see {self.log}")

    def _extra_args(self) -> list[str]:
        args = []
        if self.settle_deadline is not None:
            args += ["--settle-deadline", str(self.settle_deadline)]
        if self.fault is not None:
            args += ["--fault", self.fault]
        return [*args, *self.extra_args]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and all its workers (SIGKILL if they linger)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        # Workers share the process group: make sure none is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def __enter__(self) -> LocalBank:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
