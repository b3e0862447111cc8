"""What the seventh outside attacker found in locks, offers and their news, replayed with real
banks on loopback: bank 2's real key, in the test's hands, signs what a dishonest bank 2 sent.

Each refused message must get a signed ``refused`` with a §6 code, leave nothing behind but its
kept refusal (and, for misconduct the message shows, one proof that ``tchain proof verify``
accepts), and bank 1's books and audit must hold (the ``liar`` fixture checks them after each).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tchain.clock import now_ms
from tchain.htlc import MAX_LOCK_MS, hash_of
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import Message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.selection import DECIDING_MS
from tests.hostile.conftest import B1, B2
from tests.hostile.harness import HostilePeer
from tests.realbanks import balance, eventually, read, register, submit
from tests.realwallets import ok
from validator.operator import deposit
from validator.store import _DBS

USD, EUR2 = f"{B1}:USD", f"{B2}:EUR"
# what a refused message may leave: its kept answer (and the timer that lets it go, and the
# intent it answers), and a misconduct proof (and the count of proofs kept against the peer)
KEPT = {"inbox", "timers", "subjects", "proofs", "meta"}


def footprint(b1: Any) -> dict[str, int]:
    return dict(read(b1, lambda r: {db: r.count(db) for db in _DBS}))


@pytest.fixture
def refusal(pair: Any, liar: HostilePeer) -> Iterator[Any]:
    """Post a message bank 1 must refuse with ``code``; check it is signed, kept byte for byte,
    leaves nothing behind but the refusal and (``proof``) one proof the CLI verifies."""
    b1, _b2 = pair

    def refused(message: dict[str, Any], code: str, *, proof: bool, tmp: Path) -> dict[str, Any]:
        before = footprint(b1)
        first = liar.post(message)
        assert first.status_code == 200, first.text
        answer = liar.answer_of(message)
        assert (answer["type"], answer["error"]) == ("refused", code), answer
        assert liar.post(message).content == first.content  # repeated byte for byte
        after = footprint(b1)
        grown = {db: after[db] - before[db] for db in _DBS if after[db] != before[db]}
        assert set(grown) <= KEPT and grown.get("proofs", 0) == int(proof), grown
        assert grown.get("meta", 0) <= int(proof), grown
        kept = read(b1, lambda r: r.record("proofs", Message.from_dict(message).id))
        if proof:
            path = tmp / "proof.json"
            path.write_text(json.dumps(kept))
            summary = json.loads(ok("proof", "verify", str(path), "--json").stdout)
            assert summary["culprit"] == liar.key.public_key
        return answer

    yield refused


def forged_lock(liar: HostilePeer, payee: str, asset: str, amount: int, *,
                expires_in: int = 60_000, deadline: int | None = None, own: bool = False,
                to_validator: str | None = B1) -> dict[str, Any]:
    """A lock of a customer bank 2 makes up, for ``payee`` at bank 1, as bank 2 signs it
    (``own``: of the payer's own asset)."""
    payer = SigningKey.generate()
    chain = SigningKey.generate().public_key
    at = now_ms()
    if own:
        asset = f"mallory*{B2}:X"
    body = {"to": payee, "to_validator": to_validator, "asset": asset, "amount": str(amount),
            "hash": hash_of("42" * 32), "expires": at + expires_in}
    intent = sign_intent(payer, "lock", chain, 1, at,
                         {k: v for k, v in body.items() if v is not None})
    lock = liar.entry(chain=chain, kind="lock", intent=intent, time=at,
                      effects=[{"asset": asset, "balance": "0", "held": str(amount)}])
    return liar.sign("lock", lock=lock.doc, locker=liar.record(chain, payer.public_key),
                     deadline=at + expires_in if deadline is None else deadline)


# --- 1. a lock that is misconduct: a signed refusal and a proof, as a transfer ------------

def test_a_lock_of_a_third_banks_iou_is_refused_signed_with_a_proof(pair, refusal, liar,
                                                                     tmp_path):
    bob = register(pair[0], "bob-f")
    refusal(forged_lock(liar, bob.chain, "bank3.example:GBP", 100), "foreign_asset",
            proof=True, tmp=tmp_path)


def test_a_lock_of_more_of_our_iou_than_the_peer_holds_is_refused_with_a_proof(
        pair, refusal, liar, tmp_path):
    bob = register(pair[0], "bob-p")
    refusal(forged_lock(liar, bob.chain, USD, 10**9), "position_exceeded", proof=True,
            tmp=tmp_path)


# --- 2. a peer's lock checked by the lock rules of §3 -------------------------------------

@pytest.mark.parametrize("case", ["3 s", "31 days", "2^53-1", "deadline", "own asset"])
def test_a_lock_its_bank_could_not_have_made_is_refused_as_misconduct(pair, refusal, liar,
                                                                      tmp_path, case):
    bob = register(pair[0], f"bob-r{len(case)}{case[0]}")
    lock = {"3 s": lambda: forged_lock(liar, bob.chain, EUR2, 10, expires_in=3_000),
            "31 days": lambda: forged_lock(liar, bob.chain, EUR2, 10,
                                           expires_in=MAX_LOCK_MS + 86_400_000),
            "2^53-1": lambda: forged_lock(liar, bob.chain, EUR2, 10,
                                          expires_in=2**53 - 1 - now_ms() - 60_000),
            "deadline": lambda: forged_lock(liar, bob.chain, EUR2, 10,
                                            deadline=now_ms() + 30_000),
            "own asset": lambda: forged_lock(liar, bob.chain, EUR2, 10, own=True)}[case]()
    answer = refusal(lock, "bad_request", proof=True, tmp=tmp_path)
    assert read(pair[0], lambda r: r.record("locks", Message.from_dict(
        lock).entries["lock"].id)) is None, answer


def test_a_lock_within_the_rules_is_still_kept(pair, liar):
    bob = register(pair[0], "bob-ok")
    message = forged_lock(liar, bob.chain, EUR2, 10)
    assert liar.answer_of(message)["type"] == "ack"
    assert read(pair[0], lambda r: r.record("locks", Message.from_dict(
        message).entries["lock"].id))["state"] == "open"


def test_a_lock_dated_ahead_of_our_clock_is_refused_without_a_proof(pair, refusal, liar,
                                                                     tmp_path):
    """Its bank's rules hold at the entry's time, but that time is later than our clock by
    more than the clocks' margin: only our clock shows it, so no proof is kept."""
    bob = register(pair[0], "bob-t")
    payer = SigningKey.generate()
    chain = SigningKey.generate().public_key
    at = now_ms() + 600_000
    intent = sign_intent(payer, "lock", chain, 1, at, {
        "to": bob.chain, "to_validator": B1, "asset": EUR2, "amount": "10",
        "hash": hash_of("42" * 32), "expires": at + 60_000})
    lock = liar.entry(chain=chain, kind="lock", intent=intent, time=at,
                      effects=[{"asset": EUR2, "balance": "0", "held": "10"}])
    refusal(liar.sign("lock", lock=lock.doc, locker=liar.record(chain, payer.public_key),
                      deadline=at + 60_000), "bad_request", proof=False, tmp=tmp_path)


def test_a_lock_status_about_no_lock_gets_a_signed_refusal(pair, refusal, liar, tmp_path):
    """Every other new message with a wrong entry inside is answered in §6's codes, signed."""
    hold, _payer = liar.forged_hold(register(pair[0], "bob-s").chain, EUR2, 10)
    refusal(liar.sign("lock_status", lock=hold.doc), "bad_request", proof=False, tmp=tmp_path)


# --- 7. what the refusals say -------------------------------------------------------------

def test_a_lock_refusal_names_what_it_is_about(pair, liar):
    bob = register(pair[0], "bob-c")
    said = liar.answer_of(forged_lock(liar, bob.chain, EUR2, 10, to_validator=None))
    assert said["type"] == "refused" and "None" not in said["reason"], said
    said = requests.get(pair[0].url + "/v1/locks/not-a-lock", timeout=10).json()
    assert said["error"] == "bad_request" and "lock id" in said["message"], said


def verified(b1: Any, message: dict[str, Any]) -> str:
    return verify_proof(read(b1, lambda r: r.record(
        "proofs", Message.from_dict(message).id))).summary


# --- 3, 4. a peer's offer checked by the offer rules, and the news of its fills ----------

def forged_offer(liar: HostilePeer, *, window: int | None = None, expires_in: int = 600_000,
                 sells: int = 1000) -> tuple[dict[str, Any], SignedEntry, str]:
    """An offer of a customer bank 2 makes up: ``sells`` of its EUR for as many USD, in parts
    of 100; the ``offer`` message, the entry, and the maker's chain."""
    maker = SigningKey.generate()
    chain = SigningKey.generate().public_key
    at = now_ms()
    body: dict[str, Any] = {"sell": {"asset": EUR2, "amount": str(sells)},
                            "buy": {"asset": USD, "amount": str(sells)},
                            "expires": at + expires_in, "min_fill": "100"}
    if window is not None:
        body["window"] = window
    offer = liar.entry(chain=chain, kind="offer", time=at,
                       intent=sign_intent(maker, "offer", chain, 1, at, body),
                       effects=[{"asset": EUR2, "balance": "0", "held": str(sells)}])
    return liar.sign("offer", offer=offer.doc), offer, chain


@pytest.mark.parametrize("window, expires_in", [(3_600_000, 60_000),
                                                (60_000, 60_000 + DECIDING_MS - 1)])
def test_a_peers_offer_whose_window_does_not_close_in_time_is_not_listed(
        pair, refusal, liar, tmp_path, window, expires_in):
    message, offer, _chain = forged_offer(liar, window=window, expires_in=expires_in)
    answer = refusal(message, "bad_request", proof=False, tmp=tmp_path)
    assert "window" in answer["reason"]
    assert read(pair[0], lambda r: r.record("offers", offer.id)) is None


def fill_news(liar: HostilePeer, offer: SignedEntry, chain: str, part: int, remaining: int
              ) -> dict[str, Any]:
    """A fill of ``part`` of ``offer`` by a customer bank 2 makes up, and news of it saying
    ``remaining`` is left."""
    taker = SigningKey.generate()
    taker_chain = SigningKey.generate().public_key
    amount = {"asset": USD, "amount": str(part)}
    take = liar.entry(chain=taker_chain, kind="take", effects=[
        {"asset": USD, "balance": "0", "held": str(part)}], intent=sign_intent(
            taker, "take", taker_chain, 1, now_ms(), {"offer": offer.id, "validator": B2,
                                                      "sell": amount,
                                                      "buy": {"asset": EUR2,
                                                              "amount": str(part)}}))
    fill = liar.entry(chain=chain, kind="fill", intent=None, evidence=[take.doc], effects=[
        {"asset": EUR2, "balance": f"-{part}", "held": f"-{part}"},
        {"asset": USD, "balance": str(part), "held": "0"}])
    return liar.sign("offer_filled", offer=offer.id, entry=fill.doc, remaining=str(remaining))


def test_news_of_a_fill_leaving_more_than_the_offer_sells_is_refused(pair, refusal, liar,
                                                                     tmp_path):
    message, offer, chain = forged_offer(liar)
    assert liar.answer_of(message)["type"] == "ack"
    for remaining in (5000, 10**37, 901):
        refusal(fill_news(liar, offer, chain, 100, remaining), "bad_request", proof=False,
                tmp=tmp_path)
    assert liar.answer_of(fill_news(liar, offer, chain, 100, 900))["type"] == "ack"
    listed = requests.get(pair[0].url + "/v1/offers", params={"asset": EUR2}, timeout=10)
    assert [o["remaining"] for o in listed.json()["offers"] if o["id"] == offer.id] == ["900"]


def waiting_take(pair: Any, name: str, *, window: int = 60_000, expires_in: int = 3_600_000
                 ) -> tuple[Any, SignedEntry, SignedEntry]:
    """Bob's real offer at bank 2 sells 1000 EUR, ranking takes for ``window``; alice at bank 1
    takes 100 of it, and waits: alice, the offer and her take."""
    b1, b2 = pair
    bob, alice = register(b2, f"bob-{name}"), register(b1, f"alice-{name}")
    deposit(b2.config, f"bob-{name}", "1000", "EUR")
    deposit(b1.config, f"alice-{name}", "1000", "USD")
    r = submit(b2, bob, "offer", {"sell": {"asset": EUR2, "amount": "1000"},
                                  "buy": {"asset": USD, "amount": "1000"},
                                  "expires": now_ms() + expires_in, "min_fill": "100",
                                  "window": window})
    assert r.status_code == 201, r.text
    offer = SignedEntry.from_dict(r.json()["entries"][0])
    eventually(lambda: read(b1, lambda r: r.record("offers", offer.id)) is not None)
    r = submit(b1, alice, "take", {"offer": offer.id, "validator": B2,
                                   "sell": {"asset": USD, "amount": "100"},
                                   "buy": {"asset": EUR2, "amount": "100"}})
    assert r.status_code in (201, 202), r.text
    return alice, offer, SignedEntry.from_dict(r.json()["entries"][0])


# --- 6. a maker's fill dated inside its window ---------------------------------------------

def test_a_fill_dated_before_the_window_closed_is_not_settled(pair, liar):
    """Bob's real offer at bank 2 ranks takes for a minute; alice at bank 1 bids; bank 2's key
    signs a fill of her take dated inside the window, when bank 2 could not have decided."""
    b1 = pair[0]
    alice, offer, take = waiting_take(pair, "w")
    fill = liar.entry(chain=offer.chain_id, kind="fill", intent=None, evidence=[take.doc],
                      time=now_ms(), effects=[  # (a date ahead: test_outside_attacker9)
                          {"asset": EUR2, "balance": "-100", "held": "-100"},
                          {"asset": USD, "balance": "100", "held": "0"}])
    before = footprint(b1)
    said = liar.answer_of(liar.sign("settle", settlement=fill.doc))
    after = footprint(b1)
    assert {db for db in _DBS if after[db] != before[db]} <= KEPT - {"proofs", "meta"}
    assert (said["type"], said["error"]) == ("refused", "bad_request"), said
    assert "window" in said["reason"]
    assert balance(b1, alice, USD) == (1000, 100)  # still waiting on bank 2's decision
    assert balance(b1, alice, EUR2) == (0, 0)
