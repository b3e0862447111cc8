"""Partial fills against a lying peer: bank 2's real key, in the test's hands, signs takes of a
real offer of bank 1 that an honest bank 2 would have refused its customer (a part at less
than the price, more than the offer ever sold, a part below min_fill), and news of fills that
are not. Bank 1 must move nothing, refuse with the code, keep a misconduct proof anyone can
verify, and keep its books (the ``liar`` fixture checks them and the audit after each)."""

from __future__ import annotations

import pytest

from tchain.clock import now_ms
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import Message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tests.hostile.conftest import B1, B2
from tests.realbanks import eventually, read, register, snapshot_from, submit
from validator.operator import deposit

USD, EUR2 = f"{B1}:USD", "bank2.example:EUR"


def open_offer_in_parts(bank, maker: str) -> tuple[object, SignedEntry]:
    """A real offer at bank 2: 100 of its EUR for 90 of bank 1's USD, in parts of 10."""
    customer = register(bank, maker)
    deposit(bank.config, maker, "1000", "EUR")
    r = submit(bank, customer, "offer", {"sell": {"asset": EUR2, "amount": "100"},
                                         "buy": {"asset": USD, "amount": "90"},
                                         "expires": now_ms() + 3_600_000, "min_fill": "10"})
    assert r.status_code == 201, r.text
    return customer, SignedEntry.from_dict(r.json()["entries"][0])


def offer_in_parts(bank, maker: str, min_fill: str | None = "10") -> SignedEntry:
    """A real offer at bank 1: 100 USD for 90 of bank 2's EUR, in parts of ``min_fill`` (None:
    whole only)."""
    customer = register(bank, maker)
    deposit(bank.config, maker, "1000", "USD")
    r = submit(bank, customer, "offer", {"sell": {"asset": USD, "amount": "100"},
                                         "buy": {"asset": EUR2, "amount": "90"},
                                         "expires": now_ms() + 3_600_000,
                                         **({} if min_fill is None else {"min_fill": min_fill})})
    assert r.status_code == 201, r.text
    return SignedEntry.from_dict(r.json()["entries"][0])


def proof_of(bank, message: dict) -> dict | None:
    message_id = Message.from_dict(message).id
    return read(bank, lambda r: r.record("proofs", message_id))


@pytest.mark.parametrize(("gets", "pays", "how"), [
    (30, 26, "proven"),     # 30 cost ceil(30 * 90 / 100) = 27
    (101, 91, "proven"),    # more than the offer ever sold, at its price
    (5, 5, "attested"),     # below min_fill, and not all that remains
])
def test_a_take_against_the_offers_terms_is_refused_as_misconduct(pair, liar, gets, pays, how):
    b1, _b2 = pair
    offer = offer_in_parts(b1, f"maker-{gets}-{pays}")
    before = read(b1, snapshot_from)
    message = liar.forged_take(offer, {"asset": EUR2, "amount": str(pays)},
                               {"asset": USD, "amount": str(gets)})
    answer = liar.answer_of(message)
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert read(b1, snapshot_from) == before  # nothing moved
    proof = proof_of(b1, message)
    summary = verify_proof(proof)
    assert summary.culprit == liar.key.public_key and how in summary.summary


def test_a_take_of_more_than_remains_is_refused_but_not_misconduct(pair, liar):
    """Bank 2 may not have heard of a fill yet: a take of more than remains (but no more than
    the offer sold) is refused with offer_closed and what remains, and nobody is accused."""
    b1, _b2 = pair
    offer = offer_in_parts(b1, "maker-race")
    first = liar.forged_take(offer, {"asset": EUR2, "amount": "63"},
                             {"asset": USD, "amount": "70"})
    assert liar.answer_of(first)["type"] == "take_accepted"
    second = liar.forged_take(offer, {"asset": EUR2, "amount": "36"},
                              {"asset": USD, "amount": "40"})
    answer = liar.answer_of(second)
    assert (answer["type"], answer["error"]) == ("refused", "offer_closed"), answer
    assert "30" in answer["reason"]
    assert proof_of(b1, second) is None
    rest = liar.forged_take(offer, {"asset": EUR2, "amount": "27"},
                            {"asset": USD, "amount": "30"})
    accepted = liar.answer_of(rest)
    assert accepted["type"] == "take_accepted"
    assert accepted["settlement"]["entry"]["kind"] == "settle"  # the last part closes it


def test_news_of_a_fill_that_is_not_one_changes_nothing(pair, liar):
    b1, _b2 = pair
    offer = offer_in_parts(b1, "maker-news")
    listed = [o for o in read(b1, lambda r: [(k, v) for k, v in r.records("offers")])
              if o[0] == offer.id]
    take = liar.entry(chain="ab" * 32, kind="take", intent=None, effects=[])
    answer = liar.answer_of(liar.sign("offer_filled", offer=offer.id, entry=take.doc,
                                      remaining="1"))
    assert (answer["type"], answer["error"]) == ("refused", "bad_request")
    # bank 2's news of bank 1's own offer is not bank 2's to give
    fill = liar.entry(chain="cd" * 32, kind="fill", intent=None, effects=[],
                      evidence=[liar.forged_take(offer, {"asset": EUR2, "amount": "9"},
                                                 {"asset": USD, "amount": "10"})
                                ["message"]["take"]])
    answer = liar.answer_of(liar.sign("offer_filled", offer=offer.id, entry=fill.doc,
                                      remaining="1"))
    assert answer["type"] == "ack"
    assert [o for o in read(b1, lambda r: [(k, v) for k, v in r.records("offers")])
            if o[0] == offer.id] == listed


def test_a_part_of_a_whole_only_offer_is_proven_misconduct(pair, liar):
    """Found by the sixth outside attacker: the proof said "attested" for a part of an offer
    that may only be taken whole, though such an offer never has less left than it sells, so
    the message and the offer alone prove it."""
    b1, _b2 = pair
    offer = offer_in_parts(b1, "maker-whole-only", min_fill=None)
    message = liar.forged_take(offer, {"asset": EUR2, "amount": "45"},
                               {"asset": USD, "amount": "50"})
    answer = liar.answer_of(message)
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    summary = verify_proof(proof_of(b1, message))
    assert "proven by the message and the offer" in summary.summary, summary.summary


@pytest.mark.parametrize("lie", ["on another chain", "paying less than the price",
                                 "below min_fill", "none: true news"])
def test_news_of_a_fill_of_its_own_offer_that_could_not_be_one_is_refused(pair, liar, lie):
    """Found by the sixth outside attacker: bank 1 listed what bank 2's news of its own offer
    said remained, though the fill was on another chain, or paid less than the price, or took
    less than min_fill. Such news is checked as the fill would be; true news lowers the
    listing."""
    b1, b2 = pair
    maker, offer = open_offer_in_parts(b2, f"maker-news-{lie.split()[0].rstrip(':')}")
    eventually(lambda: read(b1, lambda r: r.record("offers", offer.id)) is not None)
    before = read(b1, lambda r: r.record("offers", offer.id))
    gets, pays = (5, 5) if lie == "below min_fill" else (20, 18)
    taker, chain = SigningKey.generate(), SigningKey.generate().public_key
    intent = sign_intent(taker, "take", chain, 1, now_ms(), {
        "offer": offer.id, "validator": B2, "sell": {"asset": USD, "amount": str(pays)},
        "buy": {"asset": EUR2, "amount": str(gets)}})
    take = liar.entry(chain=chain, kind="take", intent=intent, effects=[
        {"asset": USD, "balance": "0", "held": str(pays)}]).doc
    price_in = pays - 1 if lie == "paying less than the price" else pays
    fill = liar.entry(chain=SigningKey.generate().public_key if lie == "on another chain"
                      else offer.chain, kind="fill", intent=None, evidence=[take],
                      effects=[{"asset": EUR2, "balance": str(-gets), "held": str(-gets)},
                               {"asset": USD, "balance": str(price_in), "held": "0"}])
    answer = liar.answer_of(liar.sign("offer_filled", offer=offer.id, entry=fill.doc,
                                      remaining=str(100 - gets)))
    after = read(b1, lambda r: r.record("offers", offer.id))
    if lie == "none: true news":
        assert answer["type"] == "ack", answer
        assert after != before  # listed with what remains
    else:
        assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
        assert after == before
    assert maker is not None
