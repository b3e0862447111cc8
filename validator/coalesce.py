"""Single intents that arrive together in one worker, decided together.

Each request thread used to call ``Ledger.submit_one`` for itself: its own read transaction,
its own plan, its own place in the store's group commit, and those fixed costs were most of a
request's work. Here the first thread to arrive decides, in one ``submit_many``, every intent
that is waiting, and threads arriving meanwhile wait for the next such round, led by the first
of them. Under load the rounds grow by themselves; alone, an intent is decided at once, as
before. Each intent is still accepted or refused on its own (``submit_many``). What it gained
is in docs/performance.md ("Single intents decided together").
"""

from __future__ import annotations

import threading
from typing import Any

from tchain.model import SignedIntent
from validator.ledger import Ledger, Submitted

__all__ = ["Coalescer"]

ROUND = 100  # intents decided in one round at most: a round's latency is everyone's


class _Waiting:
    __slots__ = ("doc", "done", "failure", "leads", "result")

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.done = threading.Event()
        self.leads = False  # woken to lead the next round rather than with its result
        self.result: Submitted | None = None
        self.failure: BaseException | None = None


class Coalescer:
    """Decides the single intents of concurrent threads in rounds (see the module doc)."""

    def __init__(self, ledger: Ledger, round_size: int = ROUND) -> None:
        self._ledger = ledger
        self._round_size = round_size
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._deciding = False  # a round is running; while not, nothing waits

    def submit(self, doc: Any) -> Submitted:
        """Decide one intent out of tchain.encoding.parse (SignedIntent.trusted) with whatever
        else is waiting; return its own result. Raises what the store raised for the round
        (then nothing of that round was written)."""
        mine = _Waiting(doc)
        with self._lock:
            self._waiting.append(mine)
            leads = not self._deciding
            self._deciding = True
        if not leads:
            mine.done.wait()
            if not mine.leads:
                return _outcome(mine)
        self._round()  # led by the first waiting, so ``mine`` is in it
        return _outcome(mine)

    def _round(self) -> None:
        with self._lock:
            taken = self._waiting[:self._round_size]
            del self._waiting[:self._round_size]
        try:
            results = self._ledger.submit_many([w.doc for w in taken], read=SignedIntent.trusted)
        except BaseException as e:  # every waiter hears it; none is left waiting
            for w in taken:
                w.failure = e
        else:
            for w, result in zip(taken, results, strict=True):
                w.result = result
        with self._lock:
            if self._waiting:  # hand the next round to the first that waits for it
                self._waiting[0].leads = True
                self._waiting[0].done.set()
            else:
                self._deciding = False
        for w in taken:
            w.done.set()


def _outcome(waiting: _Waiting) -> Submitted:
    if waiting.failure is not None:
        raise waiting.failure
    assert waiting.result is not None
    return waiting.result
