"""The golden vector of a payment through a correspondent (docs/adr/0015-correspondent-
routes.md), made by tests/vectors/generate.py: three banks in a line on one fixed clock, with
fixed keys; alice at bank1 pays carol at bank3 through bank2, which takes bank1's USD at par,
pays its own and keeps a fee of 1. Alice signs 101 with receive 100. And the proof bank1 keeps
when bank2, lying, keeps that payment."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tchain.digest import digest
from tchain.encoding import parse
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, pin
from tests.routenet import make_correspondent, routed, settle_all

T0 = 1_763_700_000_000
ROUTE_SEEDS = {"bank1.example": "11" * 32, "bank2.example": "12" * 32,
               "bank3.example": "13" * 32, "alice": "21" * 32, "carol": "23" * 32}


def routes_vector() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        keys, (b1, b2, b3), net, alice, carol = _alice_pays_carol(Path(tmp), fault=None)
        chains = {"alice": _entries(b1, alice.chain), "carol": _entries(b3, carol.chain),
                  "bank2": _entries(b2, b2.ledger.bank_chain() or "")}
        answers = [parse(a) for _, a in net.delivered]
        for bank in (b1, b2, b3):
            bank.ledger.store.close()
    return {"seeds": ROUTE_SEEDS,
            "validator_keys": _validator_keys(keys),
            "chains": {n: SignedEntry.from_dict(es[0]).id for n, es in chains.items()},
            "entries": chains, "credited": next(a for a in answers
                                                if a["message"]["type"] == "credited"
                                                and a["message"]["to"] == "bank1.example")}


def route_unpaid_vector() -> dict[str, Any]:
    """The same payment, but bank2 keeps alice's 101: it answers bank1 ``credited`` with its
    credit of alice's hold and hands nothing on. Bank1's proof of it (protocol §12 "Route
    unpaid"), with its digest."""
    with tempfile.TemporaryDirectory() as tmp:
        keys, (b1, b2, b3), _, _, _ = _alice_pays_carol(Path(tmp), fault="keep-routed")
        with b1.ledger.store.read() as r:
            [(_, proof)] = list(r.records("proofs"))
        for bank in (b1, b2, b3):
            bank.ledger.store.close()
    return {"seeds": ROUTE_SEEDS, "validator_keys": _validator_keys(keys), "proof": proof,
            "proof_digest": digest("proof", proof).hex()}


def _alice_pays_carol(tmp: Path, *, fault: str | None
                      ) -> tuple[dict[str, SigningKey], tuple[NetBank, NetBank, NetBank], Net,
                                 Customer, Customer]:
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in ROUTE_SEEDS.items()}
    clock = Clock(T0)
    b1, b2, b3 = (NetBank(tmp / n, n, clock, key=keys[n],
                          fault=fault if n == "bank2.example" else None)
                  for n in ("bank1.example", "bank2.example", "bank3.example"))
    pin(b1, b2)
    pin(b2, b3)
    make_correspondent(b2, accept=("bank1.example:USD",), pay="bank2.example:USD", fee=1)
    alice, carol = b1.join("alice", keys["alice"]), b3.join("carol", keys["carol"])
    b1.deposit(alice, 500)
    net = Net(b1, b2, b3)
    b1.submit(alice, "payment", routed(carol, b3, [b2], "bank1.example:USD", 101, 100))
    settle_all(clock, net)
    return keys, (b1, b2, b3), net, alice, carol


def _validator_keys(keys: dict[str, SigningKey]) -> dict[str, str]:
    return {n: keys[n].public_key for n in ("bank1.example", "bank2.example", "bank3.example")}


def _entries(bank: NetBank, chain: str) -> list[Any]:
    with bank.ledger.store.read() as r:
        return [parse(e) for e in r.entries(chain, 0, 100)]
