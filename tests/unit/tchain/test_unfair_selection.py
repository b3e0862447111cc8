"""What a taker's bank can prove when the maker's bank lies about the best taker
(docs/adr/0009-best-taker.md): its take kept in the window (the culprit's ``pending``), then
refused as ``outbid``, while the culprit filled takes that gave strictly less per unit with at
least what it asked. Anything short of that proves nothing: a worse bid may rightly win after
a better one that did not fit, and arrival times are the culprit's alone."""

from __future__ import annotations

import os

import pytest

from tchain.errors import VerificationError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import Message, signed_message
from tchain.model import SignedEntry
from tchain.proofs import unfair_selection_proof, verify_proof
from tchain.records import make_record
from tests.helpers import sign_entry_as

MAKER, TAKER = "bank1.example", "bank2.example"
USD, EUR = f"{MAKER}:USD", f"{TAKER}:EUR"
T = 1_763_700_000_000
WINDOW = 5_000


class World:
    """The maker's bank (the culprit), the taker's bank (the reporter), and an offer of 100
    USD for 90 EUR in parts of 10, with a window of 5 s."""

    def __init__(self) -> None:
        self.maker, self.taker = SigningKey.generate(), SigningKey.generate()
        self.chain = os.urandom(32).hex()
        owner = SigningKey.generate()
        intent = sign_intent(owner, "offer", self.chain, 1, T, {
            "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
            "expires": T + 60_000, "min_fill": "10", "window": WINDOW})
        self.offer = self._entry(self.maker, self.chain, "offer", intent,
                                 [{"asset": USD, "balance": "0", "held": "100"}])

    @staticmethod
    def _entry(key, chain, kind, intent, effects, evidence=(), time=T) -> SignedEntry:
        return sign_entry_as(key, {
            "chain": chain, "height": 1, "prev": os.urandom(32).hex(), "time": time,
            "kind": kind, "intent": intent, "effects": effects, "evidence": list(evidence),
            "validator": key.public_key})

    def take(self, gets: int, gives: int, bank: SigningKey | None = None) -> SignedEntry:
        owner, chain = SigningKey.generate(), os.urandom(32).hex()
        intent = sign_intent(owner, "take", chain, 1, T + 10, {
            "offer": self.offer.id, "validator": MAKER,
            "sell": {"asset": EUR, "amount": str(gives)},
            "buy": {"asset": USD, "amount": str(gets)}})
        return self._entry(bank or self.taker, chain, "take", intent,
                           [{"asset": EUR, "balance": "0", "held": str(gives)}])

    def request(self, take: SignedEntry) -> Message:
        record = make_record(self.taker, address=f"t*{TAKER}",
                             owner=SigningKey.generate().public_key, chain=take.chain_id,
                             validator=TAKER)
        return signed_message(self.taker, "take", TAKER, MAKER, T + 20, take=take,
                              taker=record, deadline=T + 60_000)

    def answer(self, request: Message, type_: str, time: int, **fields) -> Message:
        return signed_message(self.maker, type_, MAKER, TAKER, time, ref=request.id, **fields)

    def fill(self, take: SignedEntry) -> SignedEntry:
        body = take.intent.body
        return self._entry(self.maker, self.chain, "fill", None, [
            {"asset": USD, "balance": str(-body.buy.amount), "held": str(-body.buy.amount)},
            {"asset": EUR, "balance": str(body.sell.amount), "held": "0"}], [take.doc],
            time=T + WINDOW)

    def proof(self, *, mine=(60, 60), winners=((60, 55), (40, 37)), pending_at=T + 30,
              error="outbid", twice=False):
        take = self.take(*mine)
        request = self.request(take)
        fills = [self.fill(self.take(n, p, SigningKey.generate())) for n, p in winners]
        return unfair_selection_proof(
            self.taker, reporter=TAKER, culprit_key=self.maker.public_key, offer=self.offer,
            request=request, pending=self.answer(request, "pending", pending_at, reason="w"),
            refusal=self.answer(request, "refused", T + WINDOW, error=error, reason="lost"),
            winners=fills + fills[:1] if twice else fills)


@pytest.fixture
def world():
    return World()


def test_outbid_while_worse_bids_took_enough_is_proven(world):
    summary = verify_proof(world.proof())  # 1.0 a unit refused; 0.92 and 0.925 filled 100
    assert summary.type == "unfair_selection"
    assert summary.culprit == world.maker.public_key and "outbid" in summary.summary


@pytest.mark.parametrize(("change", "why"), [
    ({"winners": ((60, 60), (40, 37))}, "less per unit"),  # an equal bid may have come first
    ({"winners": ((50, 45),)}, "took less"),  # 50 < 60: it may not have fitted
    ({"pending_at": T + WINDOW}, "after the window"),  # a late take ranks after those in it
    ({"error": "offer_closed"}, "not as outbid"),
    ({"mine": (5, 5)}, "min_fill"),  # a part below min_fill fits only all that remains
    ({"twice": True, "winners": ((30, 27),)}, "counted already"),
])
def test_anything_short_of_it_proves_nothing(world, change, why):
    with pytest.raises(VerificationError, match=why):
        world.proof(**change)


def test_a_changed_byte_breaks_the_reporters_signature(world):
    proof = world.proof()
    proof["winners"] = proof["winners"][:1]
    with pytest.raises(VerificationError, match="signature"):
        verify_proof(proof)
