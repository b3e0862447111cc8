"""Route finding (cli.routes) over banks' signed well-known documents, served by a fake of
the one thing it asks the network: each bank's document. Real keys, real signatures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cli.banks import Bank
from cli.errors import BankError, SecurityError
from cli.routes import plan_route
from federation.records import make_well_known
from tchain.keys import SigningKey
from tchain.route import Terms


class _Net:
    """Banks by name: each one's key, peers and terms, and its signed document on request."""

    def __init__(self, links: dict[str, list[str]], terms: dict[str, Terms]) -> None:
        self.keys = {name: SigningKey.generate() for name in links}
        self.links, self.terms = links, terms
        self.liar: str | None = None  # a bank whose document is signed by another key

    def bank(self, name: str) -> Bank:
        return Bank(name, f"http://{name}", self.keys[name].public_key)

    def document(self, name: str) -> dict[str, Any]:
        key = SigningKey.generate() if name == self.liar else self.keys[name]
        terms = self.terms.get(name)
        return make_well_known(key, name=name, chain="ab" * 32, api_url=f"http://{name}",
                               assets=[f"{name}:USD"],
                               peers=[{"name": p, "key": self.keys[p].public_key,
                                       "url": f"http://{p}"} for p in self.links[name]],
                               now=0, correspondent=None if terms is None else terms.to_dict())


class _Banks:
    """What plan_route asks of cli.banks.Banks: the home bank, and a client per bank."""

    def __init__(self, net: _Net, home: str) -> None:
        self.net, self._home = net, home

    def home(self) -> Bank:
        return self.net.bank(self._home)

    def client(self, bank: Bank | None = None, **_: Any) -> Any:
        net, name = self.net, (bank or self.home()).name

        class _Client:
            def well_known(self) -> dict[str, Any]:
                return net.document(name)
        return _Client()


def _terms(name: str, *accept: str, fee: int) -> Terms:
    return Terms(tuple(f"{a}:USD" for a in accept), f"{name}:USD", fee)


def _diamond() -> _Net:
    """b1 pins a (fee 5) and b (fee 1), which both pin x (fee 0), which pins b9."""
    return _Net({"b1.example": ["a.example", "b.example"],
                 "a.example": ["b1.example", "x.example"],
                 "b.example": ["b1.example", "x.example"],
                 "x.example": ["a.example", "b.example", "b9.example"],
                 "b9.example": ["x.example"]},
                {"a.example": _terms("a.example", "b1.example", fee=5),
                 "b.example": _terms("b.example", "b1.example", fee=1),
                 "x.example": _terms("x.example", "a.example", "b.example", fee=0)})


def test_the_shortest_route_then_the_cheapest_even_through_a_bank_met_twice():
    plan = plan_route(_Banks(_diamond(), "b1.example"), "b9.example", "b1.example:USD", 100)
    assert [h.bank.name for h in plan.hops] == ["b.example", "x.example"]
    assert (plan.pays, plan.receive, plan.delivers) == (101, 100, "x.example:USD")


def test_a_named_route_is_taken_as_named_and_checked_hop_by_hop():
    banks = _Banks(_diamond(), "b1.example")
    plan = plan_route(banks, "b9.example", "b1.example:USD", 100, ("a.example", "x.example"))
    assert plan.pays == 105
    with pytest.raises(BankError, match=re.escape("x.example is not a peer of b1.example")):
        plan_route(banks, "b9.example", "b1.example:USD", 100, ("x.example",))
    with pytest.raises(BankError, match=re.escape("does not hand on b1.example:EUR")):
        plan_route(banks, "b9.example", "b1.example:EUR", 100, ("a.example", "x.example"))


def test_no_route_is_one_sentence_with_the_route_refused_code():
    with pytest.raises(BankError) as refused:
        plan_route(_Banks(_diamond(), "b1.example"), "b9.example", "b1.example:EUR", 100)
    assert refused.value.code == "route_refused"
    assert str(refused.value.message).count(".") <= 3  # (bank names carry dots)


def test_a_bank_whose_document_another_key_signed_is_refused():
    net = _diamond()
    net.liar = "x.example"
    with pytest.raises(SecurityError):
        plan_route(_Banks(net, "b1.example"), "b9.example", "b1.example:USD", 100)
