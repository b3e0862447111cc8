"""One command at a time per wallet: an exclusive lock held for the whole command.

Two commands on one wallet at once each read the copy of the chain, each appended what they
had fetched, and the copy held an entry twice, for good. The lock is ``flock`` on a file
beside the wallet (``wallet.json.lock``), so the kernel lets it go when a command exits or
dies, and a command that finds it taken waits, up to a bound, then says so in one sentence.
The lock file is never removed: removing it would let two commands lock two different files.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.errors import WalletBusyError

__all__ = ["DEFAULT_WAIT", "lock_path", "wallet_lock"]

DEFAULT_WAIT = 60.0  # seconds: far more than a command takes, less than a person waits
_POLL = 0.05


def lock_path(wallet: Path) -> Path:
    return wallet.with_name(wallet.name + ".lock")


@contextmanager
def wallet_lock(wallet: Path, wait: float = DEFAULT_WAIT) -> Iterator[None]:
    """Hold ``wallet`` for the duration of the block, waiting at most ``wait`` seconds.

    Raises:
        WalletBusyError: another command held it for the whole wait.
    """
    path = lock_path(wallet)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WalletBusyError(
                        f"another tchain command is using the wallet {wallet}"
                        + (f" and did not let it go within {wait:g} s" if wait else "")
                        + "; try again when it is done") from None
                time.sleep(min(_POLL, left))
        yield
    finally:
        os.close(fd)  # lets the lock go
