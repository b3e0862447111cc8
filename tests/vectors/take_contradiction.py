"""The golden vector of a take contradiction (docs/protocol.md §12): bank2 (the maker's bank,
lying) pushes a ``settle`` of carol's take while it waits in bob's offer's window, then, the
window closed, gives the offer to dave's better bid and refuses carol's take ``outbid``. Bank1
keeps bank2's two signatures on one take. Fixed seeds, one fixed clock (attack 19, Finding 1;
tests/unit/validator/test_take_contradiction.py replays it, honest and forged)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tchain.digest import digest
from tchain.encoding import parse
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.rules import settle_hold
from tests.helpers import Customer
from tests.interbank_net import NetBank, two_banks

B1, B2 = "bank1.example", "bank2.example"
USD1, USD2 = f"{B1}:USD", f"{B2}:USD"
SEEDS = {B1: "31" * 32, B2: "32" * 32, "bob": "41" * 32, "carol": "42" * 32,
         "dave": "43" * 32}


def take_contradiction_vector() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        b1, b2, _, _ = windowed_take_settled_ahead(Path(tmp), forge=True, keys=_keys())
        [proof] = b1.interbank.proofs()
        for bank in (b1, b2):
            bank.ledger.store.close()
    return {"seeds": SEEDS, "validator_keys": {n: _keys()[n].public_key for n in (B1, B2)},
            "proof": proof, "proof_digest": digest("proof", proof).hex()}


def _keys() -> dict[str, SigningKey]:
    return {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}


def windowed_take_settled_ahead(tmp_path: Path, *, forge: bool,
                                keys: dict[str, SigningKey] | None = None
                                ) -> tuple[NetBank, NetBank, Customer, Customer]:
    """Carol and dave (bank1) take bob's offer (bank2) in its window, dave bidding better;
    with ``forge``, bank2 pushes a settle of carol's take before it ranks them."""
    keys = keys or {}
    clock, b1, b2, net = two_banks(tmp_path, keys)
    bob = b2.join("bob", keys.get("bob"))
    carol, dave = b1.join("carol", keys.get("carol")), b1.join("dave", keys.get("dave"))
    b2.deposit(bob, 100)
    b1.deposit(carol, 100)
    b1.deposit(dave, 100)
    offer = b2.submit(bob, "offer", {
        "sell": {"asset": USD2, "amount": "5"}, "buy": {"asset": USD1, "amount": "5"},
        "expires": clock.now + 60_000, "window": 5_000}).outcome.entries[0]
    net.run()
    take = b1.submit(carol, "take", {"offer": offer.id, "validator": B2,
                                     "sell": {"asset": USD1, "amount": "5"},
                                     "buy": {"asset": USD2, "amount": "5"}}).outcome.entries[0]
    b1.submit(dave, "take", {"offer": offer.id, "validator": B2,
                             "sell": {"asset": USD1, "amount": "6"},
                             "buy": {"asset": USD2, "amount": "5"}})
    net.run()  # both wait in the window: pending
    clock.now += 5_010  # the window has closed; bank2 has not ranked its takes yet
    if forge:
        settlement = settle_hold(b2.ledger.bank, b2.ledger.state(bob.chain), take,
                                 clock()).entries[0]
        pushed = sign_message(b2.key, "settle", B2, B1, clock(), settlement=settlement)
        answer = parse(b1.interbank.receive(pushed, b2.key.public_key))["message"]
        assert answer["type"] == "settled", answer
        assert b1.balance(carol, USD2) == (5, 0)
    clock.now += 1_000
    net.run()
    return b1, b2, carol, dave
