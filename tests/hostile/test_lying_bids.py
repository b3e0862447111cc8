"""The best taker against a lying peer (docs/adr/0009-best-taker.md). Bank 2's real key, in the
test's hands, signs what a dishonest bank could send about an offer with a selection window:
as the taker's bank, a bid under the price, a take whose deadline comes before the window
closes, one take wrapped in two messages to be ranked twice; as the maker's bank, a
settlement of our customer's bid that brings its maker only the price and keeps the rest.
Bank 1 must move nothing it should not, refuse with the code, keep a misconduct proof anyone
can verify where the message proves one, and keep its books (the ``liar`` fixture checks them
and the audit after each)."""

from __future__ import annotations

from tchain.clock import now_ms
from tchain.messages import Message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tests.helpers import decision
from tests.hostile.conftest import B1, B2
from tests.realbanks import eventually, read, register, snapshot_from, submit
from validator.bids import MAX_BIDS_PER_PEER
from validator.operator import deposit

USD, EUR2 = f"{B1}:USD", f"{B2}:EUR"


def windowed_offer(bank, maker: str, sell: tuple[str, str], buy: tuple[str, str],
                   window: int) -> SignedEntry:
    customer = register(bank, maker)
    deposit(bank.config, maker, "1000", sell[0].rpartition(":")[2])
    r = submit(bank, customer, "offer", {"sell": {"asset": sell[0], "amount": sell[1]},
                                         "buy": {"asset": buy[0], "amount": buy[1]},
                                         "expires": now_ms() + 3_600_000, "min_fill": "10",
                                         "window": window})
    assert r.status_code == 201, r.text
    return SignedEntry.from_dict(r.json()["entries"][0])


def test_a_bid_under_the_price_is_proven_misconduct(pair, liar):
    b1, _b2 = pair
    offer = windowed_offer(b1, "maker-under", (USD, "100"), (EUR2, "90"), 60_000)
    before = read(b1, snapshot_from)
    message = liar.forged_take(offer, {"asset": EUR2, "amount": "26"},  # 30 cost 27
                               {"asset": USD, "amount": "30"})
    answer = liar.answer_of(message)
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert read(b1, snapshot_from) == before
    summary = verify_proof(read(b1, lambda r: r.record("proofs", Message.from_dict(message).id)))
    assert summary.culprit == liar.key.public_key and "proven" in summary.summary


def test_a_take_whose_deadline_comes_before_the_window_closes_is_refused_at_once(pair, liar):
    b1, _b2 = pair
    offer = windowed_offer(b1, "maker-short", (USD, "100"), (EUR2, "90"), 60_000)
    message = liar.forged_take(offer, {"asset": EUR2, "amount": "40"},
                               {"asset": USD, "amount": "30"})  # its deadline: now + 30 s
    answer = liar.answer_of(message)
    assert (answer["type"], answer["error"]) == ("refused", "expired"), answer
    assert liar.answer_of(message) == answer  # final, and kept
    record = read(b1, lambda r: r.record("offers", offer.id))
    assert "bids" not in record


def test_one_take_in_two_messages_waits_once_and_gets_one_answer(pair, liar):
    b1, _b2 = pair
    offer = windowed_offer(b1, "maker-twice", (USD, "100"), (EUR2, "90"), 1_500)
    first = liar.forged_take(offer, {"asset": EUR2, "amount": "40"},
                             {"asset": USD, "amount": "30"})
    again = liar.sign("take", take=first["message"]["take"], taker=first["message"]["taker"],
                      deadline=first["message"]["deadline"] + 1)
    assert liar.answer_of(first)["type"] == "pending"
    assert liar.answer_of(again)["type"] == "pending"  # not kept: asked again, still waiting
    record = read(b1, lambda r: r.record("offers", offer.id))
    assert len(record["bids"]) == 1  # ranked once
    decided = eventually(lambda: (a := liar.answer_of(first))["type"] != "pending" and a)
    assert decided["type"] == "take_accepted", decided
    settlement = decided["settlement"]["entry"]
    assert settlement["effects"][1] == {"asset": EUR2, "balance": "40", "held": "0"}  # its bid
    # the other message carries the same take: the same answer, no second fill
    assert decision(liar.post(again).content) == decision(liar.post(first).content)
    holds = read(b1, lambda r: r.state(offer.chain, (offer.id,)).holds.get(offer.id))
    assert holds.amount == 70


def test_a_settlement_that_brings_the_maker_only_the_price_of_our_bid_is_refused(pair, liar):
    """Bank 2 made the offer; bank 1's customer bid 40 for 30 (the price is 27). A settlement
    whose fill brings the maker 27 keeps 13 of our customer's: not our take's terms, refused,
    and our customer's hold waits for a true one."""
    b1, b2 = pair
    offer = windowed_offer(b2, "maker-keeps", (EUR2, "100"), (USD, "90"), 60_000)
    eventually(lambda: read(b1, lambda r: r.record("offers", offer.id)) is not None)
    taker = register(b1, "bidder")
    deposit(b1.config, "bidder", "1000", "USD")
    r = submit(b1, taker, "take", {"offer": offer.id, "validator": B2,
                                   "sell": {"asset": USD, "amount": "40"},
                                   "buy": {"asset": EUR2, "amount": "30"}})
    assert r.status_code in (201, 202), r.text
    take = SignedEntry.from_dict(r.json()["entries"][0])
    assert r.json()["flow"]["state"] == "pending"  # bank 2 ranks it when its window closes
    forged = liar.entry(chain=offer.chain, kind="fill", intent=None, evidence=[take.doc],
                        effects=[{"asset": EUR2, "balance": "-30", "held": "-30"},
                                 {"asset": USD, "balance": "27", "held": "0"}])
    answer = liar.answer_of(liar.sign("settle", settlement=forged.doc))
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert read(b1, lambda r: r.state(taker.chain, (take.id,)).holds.get(take.id)) is not None
    honest = liar.entry(chain=offer.chain, kind="fill", intent=None, evidence=[take.doc],
                        time=offer.time + 60_000,  # its bank decides when the window closes
                        effects=[{"asset": EUR2, "balance": "-30", "held": "-30"},
                                 {"asset": USD, "balance": "40", "held": "0"}])
    answer = liar.answer_of(liar.sign("settle", settlement=honest.doc))
    # its own terms, but dated a minute ahead of our clock, with the window open here: not
    # a decision bank 2 could have made yet (tchain.peer_dates, the ninth outside attacker)
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert read(b1, lambda r: r.state(taker.chain, (take.id,)).holds.get(take.id)) is not None


def test_a_peer_cannot_grow_an_offers_waiting_takes_without_bound(pair, liar):
    """Found here: each waiting take is kept in the offer's record, so a bank signing takes of
    customers it makes up could grow it without end (and each bid rewrites it). A peer has
    MAX_BIDS_PER_PEER waiting per offer; more are refused at once."""
    b1, _b2 = pair
    offer = windowed_offer(b1, "maker-flood", (USD, "100"), (EUR2, "90"), 20_000)
    for _ in range(MAX_BIDS_PER_PEER):
        message = liar.forged_take(offer, {"asset": EUR2, "amount": "10"},
                                   {"asset": USD, "amount": "10"})
        got = liar.answer_of(message)
        assert got["type"] == "pending", got
    message = liar.forged_take(offer, {"asset": EUR2, "amount": "10"},
                               {"asset": USD, "amount": "10"})
    answer = liar.answer_of(message)
    assert (answer["type"], answer["error"]) == ("refused", "limit_exceeded"), answer
    record = read(b1, lambda r: r.record("offers", offer.id))
    assert len(record["bids"]) == MAX_BIDS_PER_PEER
