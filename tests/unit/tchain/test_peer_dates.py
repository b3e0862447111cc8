"""The dates a peer's entries must keep (tchain.peer_dates, tchain.htlc): what the ninth
outside attacker dated to get settled. One rule for every peer entry (not dated ahead of our
clock by more than the clocks' margin); a maker's settlement of our take dated neither once its
offer expired nor before its window closed, by its date or by our clock; and a claim never
older than the lock it claims, which the offline verifier (§5) checks too."""

from __future__ import annotations

from typing import Any

import pytest

from tchain.errors import BadRequestRuleError, VerificationError
from tchain.flow_states import CLOCK_MARGIN_MS
from tchain.htlc import hash_of
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.peer_dates import check_not_ahead, check_settlement_dates
from tchain.verify import verify_chain
from tests.helpers import Clock, sign_entry_as
from tests.interbank_net import NetBank

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"
BANK2 = SigningKey.generate()
T = 1_800_000_000_000


def entry(kind: str, time: int, *, intent: dict[str, Any] | None = None) -> SignedEntry:
    chain = "ab" * 32
    return sign_entry_as(BANK2, {
        "chain": chain, "height": 2, "prev": "cd" * 32, "time": time, "kind": kind,
        "intent": intent, "effects": [], "evidence": [], "validator": BANK2.public_key})


def offer(*, window: int | None) -> SignedEntry:
    maker = SigningKey.generate()
    body: dict[str, Any] = {"sell": {"asset": EUR, "amount": "100"},
                            "buy": {"asset": USD, "amount": "100"}, "expires": T + 600_000}
    if window is not None:
        body["window"] = window
    return entry("offer", T, intent=sign_intent(maker, "offer", "ab" * 32, 1, T, body))


def test_one_rule_for_every_peer_entry_dated_ahead_of_our_clock():
    check_not_ahead(entry("fill", T + CLOCK_MARGIN_MS), T, "settlement")  # within the margin
    for ahead in (CLOCK_MARGIN_MS + 1, 10 * 365 * 86_400_000):
        with pytest.raises(BadRequestRuleError, match="clocks' margin"):
            check_not_ahead(entry("fill", T + ahead), T, "settlement")


@pytest.mark.parametrize("dated, now", [(T + 600_000, T + 600_000),  # as the offer expires
                                        (T + 700_000, T + 700_000)])  # after
def test_a_settlement_dated_once_its_offer_expired_is_refused(dated, now):
    with pytest.raises(BadRequestRuleError, match="expired"):
        check_settlement_dates(entry("fill", dated), offer(window=None), now)


def test_a_windowed_offer_is_settled_only_once_the_window_closed_by_both_clocks():
    windowed = offer(window=60_000)
    closes = T + 60_000
    # dated after the close, got while our clock says it is open (beyond the margin)
    with pytest.raises(BadRequestRuleError, match="window closes"):
        check_settlement_dates(entry("fill", closes + 100), windowed, closes - 59_000)
    with pytest.raises(BadRequestRuleError, match="window closes"):  # dated before
        check_settlement_dates(entry("fill", closes - 1), windowed, closes + 1)
    # the maker's clock may run ahead of ours by the margin: its decision is honest
    check_settlement_dates(entry("fill", closes), windowed, closes - CLOCK_MARGIN_MS)
    check_settlement_dates(entry("fill", closes + 5), windowed, closes + 10)


def test_a_claim_older_than_its_lock_does_not_verify_offline(tmp_path):
    """Bob joined long before alice locked for him; a claim dated between (after his last
    entry, before the lock) is refused by §5, as one after the expiry is."""
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    bob = b1.join("bob")
    clock.now += 100_000
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    preimage = "5a" * 32
    lock = b1.submit(alice, "lock", {"to": bob.chain, "asset": USD, "amount": "300",
                                     "hash": hash_of(preimage), "expires": clock.now + 60_000}
                     ).outcome.entries[0]
    with b1.ledger.store.read() as r:
        mine = [SignedEntry.from_bytes(e) for e in r.entries(bob.chain, 0, 100)]
    at = lock.time - 50_000
    claim = sign_entry_as(b1.key, {
        "chain": bob.chain, "height": mine[-1].height + 1, "prev": mine[-1].id, "time": at,
        "kind": "claim", "intent": sign_intent(bob.key, "claim", bob.chain, 1, at,
                                               {"lock": lock.id, "preimage": preimage}),
        "effects": [{"asset": USD, "balance": "300", "held": "0"}], "evidence": [lock.doc],
        "validator": b1.key.public_key})
    with pytest.raises(VerificationError, match="older than lock"):
        verify_chain([*mine, claim], b1.key.public_key, B1, mine[0].id)

