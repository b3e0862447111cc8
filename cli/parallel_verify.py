"""Verifying a long chain on every core.

The chain's rules (links, seq, effects, balances) must run in order, here; the Ed25519 checks,
most of a verification's cost, need nothing but their own bytes. So the verifier collects each
page's signature checks and worker processes check them while this process reads the next
page. Processes, not threads: PyNaCl lets go of the GIL inside each check, but the Python
around some fifty microseconds of C code cannot share one interpreter without waiting on it.

Nothing is returned before every batch has been found valid, and the error raised is the
first in height order, whether a signature or a rule found it.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from tchain.keys import CORES
from tchain.model import SignedEntry
from tchain.verify import ChainVerifier, DeferredSignatures, first_invalid

__all__ = ["PAGE", "default_workers", "verify_all"]

PAGE = 1000  # entries whose signatures go out together
CHUNK = 500  # signatures per task, so that one page keeps every worker busy
AHEAD = 2  # pages out at once at most: memory stays flat however long the chain
WORTH_A_POOL = 4 * PAGE  # below this, starting worker processes costs more than it saves


def default_workers(entries: int) -> int:
    """Worker processes for verifying ``entries`` entries: none for a short chain."""
    return 0 if entries < WORTH_A_POOL else CORES


_Batch = tuple[list["Future[int | None]"], DeferredSignatures]


def verify_all(verifier: ChainVerifier, entries: Iterable[SignedEntry | dict[str, Any] | bytes],
               *, workers: int, keep: bool = True) -> list[SignedEntry]:
    """Feed ``entries`` to ``verifier`` in height order, their signatures checked in
    ``workers`` processes (0: here, a page at a time); the verifier checks signatures as it
    goes again afterwards.

    Returns:
        The entries parsed (none when not ``keep``), every one of them verified.

    Raises:
        VerificationError: the first failure in height order.
    """
    pool = None if workers == 0 else ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"))
    out: deque[_Batch] = deque()
    kept: list[SignedEntry] = []
    try:
        with verifier.collecting_signatures():
            try:
                for fed, raw in enumerate(entries, 1):
                    entry = verifier.feed(raw)
                    if keep:
                        kept.append(entry)
                    if fed % PAGE == 0:
                        _send(pool, verifier.take_signatures(), out)
                        while len(out) > AHEAD:
                            _settle(out.popleft())
            finally:  # what was collected before a refusal may hold the first failure
                _send(pool, verifier.take_signatures(), out)
                while out:
                    _settle(out.popleft())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return kept


def _send(pool: ProcessPoolExecutor | None, batch: DeferredSignatures, out: deque[_Batch]
          ) -> None:
    if pool is None:
        batch.check()
        return
    signatures = batch.signatures
    out.append(([pool.submit(first_invalid, signatures[i:i + CHUNK])
                 for i in range(0, len(signatures), CHUNK)], batch))


def _settle(sent: _Batch) -> None:
    futures, batch = sent
    for number, future in enumerate(futures):
        index = future.result()
        if index is not None:
            batch.refuse(number * CHUNK + index)
