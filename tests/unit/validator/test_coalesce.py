"""Single intents arriving together in one worker are decided together, each on its own."""

from __future__ import annotations

import threading
import time
from typing import Any

from tchain.errors import StoreFullError
from tests.helpers import BANK, USD, join, new_ledger
from validator.coalesce import Coalescer
from validator.ledger import Ledger, Submitted

FOLLOWERS = 19


class _Gated:
    """The real ledger, but its first round waits until the test lets it go (so the others
    queue behind it), and round ``fail`` raises what the store could raise."""

    def __init__(self, ledger: Ledger, fail: int | None = None) -> None:
        self.ledger = ledger
        self.fail = fail
        self.rounds: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def submit_many(self, docs: list[Any], *, read: Any) -> list[Submitted]:
        self.rounds.append(len(docs))
        if len(self.rounds) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if len(self.rounds) == self.fail:
            raise StoreFullError("the store is full (from the test)")
        return self.ledger.submit_many(docs, read=read)


def _world(tmp_path, fail: int | None = None):
    ledger = new_ledger(tmp_path / "store")
    payee = join(ledger, "payee")
    payers = [join(ledger, f"p{i}") for i in range(FOLLOWERS + 1)]
    for p in payers:
        ledger.deposit(f"{p.name}*{BANK}", USD, 10)
    gated = _Gated(ledger, fail)
    return ledger, payee, payers, gated, Coalescer(gated)  # type: ignore[arg-type]


def _run_round_behind_a_held_one(coalescer: Coalescer, gated: _Gated, docs: list[Any]
                                 ) -> list[Submitted | BaseException]:
    """The first doc's round is held while the others queue; then all are let go."""
    out: list[Submitted | BaseException | None] = [None] * len(docs)

    def submit(i: int) -> None:
        try:
            out[i] = coalescer.submit(docs[i])
        except BaseException as e:  # the test looks at it
            out[i] = e

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    assert gated.entered.wait(10)
    others = [threading.Thread(target=submit, args=(i,)) for i in range(1, len(docs))]
    for t in others:
        t.start()
    deadline = time.monotonic() + 10
    while len(coalescer._waiting) < len(others):  # all queued behind the held round
        assert time.monotonic() < deadline, "the followers did not queue"
        time.sleep(0.01)
    gated.release.set()
    for t in [first, *others]:
        t.join(10)
    assert all(r is not None for r in out)
    return out  # type: ignore[return-value]


def test_intents_queued_behind_a_round_are_decided_in_the_next_one_each_with_its_result(
        tmp_path):
    ledger, payee, payers, gated, coalescer = _world(tmp_path)
    docs = [p.payment(payee, "3") for p in payers]
    results = _run_round_behind_a_held_one(coalescer, gated, docs)
    assert gated.rounds == [1, FOLLOWERS]  # led by the first follower, for all of them
    for doc, result in zip(docs, results, strict=True):
        assert isinstance(result, Submitted) and result.error is None
        debit = result.outcome.entries[0]
        assert debit.intent is not None and debit.intent.doc == doc  # its own, not another's
    assert ledger.state(payee.chain).balances[USD].balance == 3 * len(payers)
    for p in payers:
        assert ledger.state(p.chain).balances[USD].balance == 7


def test_a_round_the_store_fails_fails_every_intent_in_it_and_the_next_round_runs(tmp_path):
    ledger, payee, payers, gated, coalescer = _world(tmp_path, fail=2)
    docs = [p.payment(payee, "3") for p in payers]
    results = _run_round_behind_a_held_one(coalescer, gated, docs)
    assert isinstance(results[0], Submitted) and results[0].error is None
    assert all(isinstance(r, StoreFullError) for r in results[1:])
    for p in payers[1:]:  # nothing of the failed round was written
        assert ledger.state(p.chain).seq == 0
    again = coalescer.submit(docs[1])  # no round left running: this one leads at once
    assert again.error is None
    assert gated.rounds == [1, FOLLOWERS, 1]


def test_a_refused_intent_is_refused_alone(tmp_path):
    ledger, payee, payers, gated, coalescer = _world(tmp_path)
    gated.release.set()
    bad = payers[0].payment(payee, "11")  # more than the 10 it has
    result = coalescer.submit(bad)
    assert result.error is not None and result.error.code == "insufficient_funds"
    assert result.outcome is None
    assert coalescer.submit(payers[1].payment(payee, "10")).error is None
    assert ledger.state(payers[0].chain).seq == 0
