"""Banks in a line for routed payments (docs/adr/0015-correspondent-routes.md): in process,
wired by tests/interbank_net.py, each middle bank a correspondent."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from tchain.route import Terms
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, all_sound, pin
from validator.route import set_terms
from validator.store import Writer


def make_correspondent(bank: NetBank, *, accept: tuple[str, ...], pay: str, fee: int,
                       limit: int | None = None) -> None:
    """Publish ``bank``'s terms as a correspondent."""
    terms = Terms(accept, pay, fee, limit)

    def work(w: Writer) -> None:
        set_terms(w, terms)

    bank.ledger.store.write(work)


def line(path: Path, n: int, *, fee: int = 1) -> tuple[Clock, list[NetBank], Net]:
    """``n`` banks bank1..bankN, each pinned to the next only; every middle bank takes both
    neighbours' IOUs at par and pays with its own, for ``fee``."""
    clock = Clock()
    banks = [NetBank(path / f"b{i}", f"bank{i}.example", clock) for i in range(1, n + 1)]
    for a, b in pairwise(banks):
        pin(a, b)
    for i, bank in enumerate(banks[1:-1], start=1):
        make_correspondent(bank, accept=(f"{banks[i - 1].name}:USD", f"{banks[i + 1].name}:USD"),
                           pay=f"{bank.name}:USD", fee=fee)
    return clock, banks, Net(*banks)


def routed(payee: Customer, payee_bank: NetBank, via: list[NetBank], asset: str, amount: int,
           receive: int) -> dict[str, Any]:
    """A routed payment's body, with the key of every bank after the payer's, as its wallet
    found them."""
    return {"to": payee.chain, "to_validator": payee_bank.name, "asset": asset,
            "amount": str(amount), "via": [b.name for b in via], "receive": str(receive),
            "keys": {b.name: b.key.public_key for b in (*via, payee_bank)}}


def alice_pays_carol(path: Path, *, fee: int = 1, asset: str = "bank1.example:USD",
                     before: Callable[[list[NetBank]], None] = lambda banks: None
                     ) -> tuple[Clock, list[NetBank], Net, Customer, Customer]:
    """Three banks in a line; alice at bank1 (500 of ``asset``'s code deposited) pays carol at
    bank3 through bank2, 101 for carol to get 100, once ``before`` has set the line up."""
    clock, banks, net = line(path, 3, fee=fee)
    b1, b2, b3 = banks
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500, asset.rpartition(":")[2])
    before(banks)
    b1.submit(alice, "payment", routed(carol, b3, [b2], asset, 101, 100))
    return clock, banks, net, alice, carol


def settle_all(clock: Clock, net: Net, rounds: int = 12) -> None:
    """Deliver until nothing moves, letting the clock on past each ask-again."""
    for _ in range(rounds):
        net.run()
        clock.now += 1_100


def sound(banks: list[NetBank]) -> None:
    all_sound(*banks, chains_verify=True)
