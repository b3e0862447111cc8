"""What the ninth outside attacker found in windows, fills and locks, replayed with real banks
on loopback: bank 2's real key, in the test's hands, signs what a dishonest bank 2 sent.

Dates a peer chose were believed: a maker's fill dated after its window closed but sent while
it was open here, or ten years ahead; a claim older than the lock it claims, or twenty days
ahead; an offer an hour ahead. And news of a fill whose take, on one of our chains, was one
bank 2 made up. Each is refused signed, in §6's codes, kept byte for byte, and leaves nothing
but its kept refusal (and, for what the message alone shows, one proof the CLI verifies): the
``refusal`` fixture checks it, the ``liar`` fixture bank 1's books and audit after each.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from tchain.clock import now_ms
from tchain.htlc import MAX_LOCK_MS
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tests.hostile.conftest import B1, B2
from tests.hostile.harness import HostilePeer
from tests.hostile.test_lying_locks import PREIMAGE, claimed, real_lock
from tests.hostile.test_outside_attacker7 import forged_offer, refusal, waiting_take
from tests.realbanks import balance, eventually, read, register
from tests.realwallets import ok

USD, EUR2 = f"{B1}:USD", f"{B2}:EUR"
YEAR_MS = 365 * 86_400_000
__all__ = ["refusal"]  # the fixture of the seventh attacker's tests, used here too


def forged_fill(liar: HostilePeer, offer: SignedEntry, take: SignedEntry, time: int
                ) -> dict[str, Any]:
    """A ``settle`` carrying a fill of ``take`` dated ``time``, as bank 2's key signs it."""
    fill = liar.entry(chain=offer.chain_id, kind="fill", intent=None, evidence=[take.doc],
                      time=time, effects=[{"asset": EUR2, "balance": "-100", "held": "-100"},
                                          {"asset": USD, "balance": "100", "held": "0"}])
    return liar.sign("settle", settlement=fill.doc)


# --- F1: a maker's settlement dated as its bank likes --------------------------------------

def test_a_fill_dated_after_the_close_but_got_while_the_window_is_open_here_is_refused(
        pair, refusal, liar, tmp_path):
    """The attacker's a8: the fill dated past the close, sent a minute before it (refused as
    dated ahead of our clock; a date within the margin is refused by the window's close by
    our clock: tests/unit/tchain/test_peer_dates.py)."""
    alice, offer, take = waiting_take(pair, "f1")
    said = refusal(forged_fill(liar, offer, take, offer.time + 60_100), "bad_request",
                   proof=False, tmp=tmp_path)
    assert "clocks' margin" in said["reason"], said
    assert balance(pair[0], alice, USD) == (1000, 100)  # still waiting on bank 2's decision
    assert balance(pair[0], alice, EUR2) == (0, 0)


def test_a_fill_dated_years_ahead_is_refused_by_the_one_rule_for_peer_dates(
        pair, refusal, liar, tmp_path):
    """The attacker's a9 and a29: a fill ten years ahead (past the offer's expiry too)."""
    alice, offer, take = waiting_take(pair, "f10")
    said = refusal(forged_fill(liar, offer, take, now_ms() + 10 * YEAR_MS), "bad_request",
                   proof=False, tmp=tmp_path)
    assert "clocks' margin" in said["reason"], said
    assert balance(pair[0], alice, USD) == (1000, 100)


def test_an_offer_dated_an_hour_ahead_is_not_listed(pair, refusal, liar, tmp_path):
    """F4, a30: the offer's intent and entry an hour ahead, its window closing after."""
    maker = SigningKey.generate()
    chain = SigningKey.generate().public_key
    at = now_ms() + 3_600_000
    body = {"sell": {"asset": EUR2, "amount": "100"}, "buy": {"asset": USD, "amount": "100"},
            "expires": at + 600_000, "window": 60_000}
    offer = liar.entry(chain=chain, kind="offer", time=at,
                       intent=sign_intent(maker, "offer", chain, 1, at, body),
                       effects=[{"asset": EUR2, "balance": "0", "held": "100"}])
    said = refusal(liar.sign("offer", offer=offer.doc), "bad_request", proof=False,
                   tmp=tmp_path)
    assert "clocks' margin" in said["reason"], said
    assert read(pair[0], lambda r: r.record("offers", offer.id)) is None


# --- F3: a claim dated before its lock, or ahead -------------------------------------------

def test_a_claim_older_than_its_lock_is_refused_with_a_proof(pair, refusal, liar, tmp_path):
    """a2 early: bob's claim dated 100 s before alice's lock; the message alone shows it."""
    alice, bob, lock = real_lock(*pair, "alice-c3", "bob-c3")
    said = refusal(claimed(liar, bob, lock, PREIMAGE, time=lock.time - 100_000),
                   "bad_request", proof=True, tmp=tmp_path)
    assert "older than lock" in said["reason"], said
    assert balance(pair[0], alice, USD) == (1000, 500)


def test_a_claim_dated_twenty_days_ahead_is_refused(pair, refusal, liar, tmp_path):
    """a32: a lock expiring in 29 days, claimed by an entry dated 20 days ahead."""
    alice, bob, lock = real_lock(*pair, "alice-c20", "bob-c20",
                                 expires_in_ms=MAX_LOCK_MS - 86_400_000)
    said = refusal(claimed(liar, bob, lock, PREIMAGE, time=now_ms() + 20 * 86_400_000),
                   "bad_request", proof=False, tmp=tmp_path)
    assert "clocks' margin" in said["reason"], said
    assert balance(pair[0], alice, USD) == (1000, 500)


# --- F5: news of a fill whose take is on one of our chains ---------------------------------

def test_news_of_a_fill_of_a_take_on_our_chain_we_do_not_keep_is_refused(
        pair, refusal, liar, tmp_path):
    """a11: the fill's take names alice's chain at bank 1, but bank 2 signed it."""
    message, offer, chain = forged_offer(liar)
    assert liar.answer_of(message)["type"] == "ack"
    alice = register(pair[0], "alice-n5")
    taker = SigningKey.generate()
    amount = {"asset": USD, "amount": "100"}
    take = liar.entry(chain=alice.chain, kind="take", height=2, effects=[
        {"asset": USD, "balance": "0", "held": "100"}], intent=sign_intent(
            taker, "take", alice.chain, 1, now_ms(),
            {"offer": offer.id, "validator": B2, "sell": amount,
             "buy": {"asset": EUR2, "amount": "100"}}))
    fill = liar.entry(chain=chain, kind="fill", intent=None, evidence=[take.doc], effects=[
        {"asset": EUR2, "balance": "-100", "held": "-100"},
        {"asset": USD, "balance": "100", "held": "0"}])
    said = refusal(liar.sign("offer_filled", offer=offer.id, entry=fill.doc, remaining="900"),
                   "bad_request", proof=False, tmp=tmp_path)
    assert "not the entry we keep" in said["reason"], said
    listed = requests.get(pair[0].url + "/v1/offers", params={"asset": EUR2}, timeout=10)
    assert [o["remaining"] for o in listed.json()["offers"] if o["id"] == offer.id] == ["1000"]


# --- F2: a maker's bank that settles one take twice ---------------------------------------

def test_two_settlements_of_one_take_signed_by_the_makers_bank_are_kept_as_a_proof(
        pair, liar, tmp_path):
    """a37: bob's offer ranks takes for 3 s; alice takes 100 of its 1000. At the close bank
    2's key signs a ``settle`` of her take (a closing entry for a part), and the real bank 2
    writes its own ``fill``: whichever comes second, bank 1 keeps both, one proof the CLI
    verifies, and alice's take is settled once."""
    b1 = pair[0]
    alice, offer, take = waiting_take(pair, "d2", window=3_000, expires_in=600_000)
    time.sleep(max(0.0, (offer.time + 3_000 - now_ms()) / 1000))
    forged = liar.entry(chain=offer.chain_id, kind="settle", intent=None, evidence=[take.doc],
                        effects=[{"asset": EUR2, "balance": "-100", "held": "-100"},
                                 {"asset": USD, "balance": "100", "held": "0"}])
    said = liar.answer_of(liar.sign("settle", settlement=forged.doc))
    assert said["type"] == "settled", said  # first or second, the take is settled
    eventually(lambda: double_settlements(b1, take.id), timeout=30)
    [proof] = double_settlements(b1, take.id)
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    summary = json.loads(ok("proof", "verify", str(path), "--json").stdout)
    assert summary["culprit"] == liar.key.public_key and take.id in summary["summary"]
    assert balance(b1, alice, USD) == (900, 0)
    assert balance(b1, alice, EUR2) == (100, 0)


def double_settlements(b1: Any, take_id: str) -> list[dict[str, Any]]:
    """Bank 1's double_settlement proofs about take ``take_id``."""
    return [p for _, p in read(b1, lambda r: r.records("proofs"))
            if p.get("type") == "double_settlement"
            and SignedEntry.from_dict(p["settlements"][0]).evidence_entry(0).id == take_id]
