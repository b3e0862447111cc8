"""Finding a route to a bank ours does not pin: through banks that pin each other in turn
and publish terms as correspondents (docs/adr/0015-correspondent-routes.md).

Each bank on the way is reached the way a payment reaches it: its name, URL and key come from
the signed peer list of the bank before it (our own bank's first), and its own well-known
document must be signed by that key. Its published ``correspondent`` terms say which IOUs it
takes at par, which it hands on and the fee it keeps. Breadth first: the shortest route,
then the cheapest. The payer sees the route and what it costs before signing (``--dry-run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from cli.banks import Bank, Banks
from cli.errors import BankError, SecurityError
from cli.output import emit
from federation.records import verify_record, verify_well_known
from tchain.errors import EncodingError, RouteRefusedError, VerificationError
from tchain.model import MAX_VIA
from tchain.route import Terms
from tchain.values import UAI, parse_address

__all__ = ["Hop", "RoutePlan", "payee_record", "plan_route", "show_route"]


@dataclass(frozen=True)
class Hop:
    """A correspondent on the route, and its terms."""

    bank: Bank
    terms: Terms


@dataclass(frozen=True)
class RoutePlan:
    """A route to the payee's bank: the correspondents in order, and what it costs."""

    hops: tuple[Hop, ...]
    payee_bank: Bank
    asset: str  # what the payer pays in
    pays: int  # the most the payer pays: what the payee gets plus every fee
    receive: int  # what the payee gets
    delivers: str  # the IOU the payee gets

    def body(self, payee_chain: str) -> dict[str, Any]:
        """The routed payment's body (docs/protocol.md §3)."""
        return {"to": payee_chain, "to_validator": self.payee_bank.name, "asset": self.asset,
                "amount": str(self.pays), "via": [h.bank.name for h in self.hops],
                "receive": str(self.receive), "keys": self.keys()}

    def keys(self) -> dict[str, str]:
        """The key of every bank after ours, as each bank before it lists it in its signed
        peer list: the payer signs them, so no correspondent's word replaces them."""
        return {bank.name: bank.key for bank in (*(h.bank for h in self.hops), self.payee_bank)}

    def to_dict(self) -> dict[str, Any]:
        return {"via": [h.bank.name for h in self.hops], "to_validator": self.payee_bank.name,
                "asset": self.asset, "pays": str(self.pays), "receive": str(self.receive),
                "delivers": self.delivers,
                "fees": {h.bank.name: str(h.terms.fee) for h in self.hops}}

    def describe(self) -> str:
        path = " -> ".join([*(h.bank.name for h in self.hops), self.payee_bank.name])
        return (f"route via {path}: you pay {self.pays} {self.asset}, the payee gets "
                f"{self.receive} {self.delivers} (fees {self.pays - self.receive})")


class _Explorer:
    """The banks met so far: each one's checked document, fetched once."""

    def __init__(self, banks: Banks) -> None:
        self.banks = banks
        self.documents: dict[str, dict[str, Any]] = {}

    def document(self, bank: Bank) -> dict[str, Any]:
        if bank.name not in self.documents:
            try:
                document = verify_well_known(self.banks.client(bank).well_known(),
                                             expected_key=bank.key)
            except VerificationError as e:
                raise SecurityError(f"{bank.name}: {e.message}") from e
            if document["name"] != bank.name:
                raise SecurityError(f"{bank.url} calls itself {document['name']}, not "
                                    f"{bank.name}")
            self.documents[bank.name] = document
        return self.documents[bank.name]

    def peers(self, bank: Bank) -> dict[str, Bank]:
        return {p["name"]: Bank(p["name"], p["url"], p["key"])
                for p in self.document(bank)["peers"]}

    def terms(self, bank: Bank) -> Terms | None:
        raw = self.document(bank).get("correspondent")
        try:
            return None if raw is None else Terms.from_dict(raw)
        except EncodingError:
            return None


def _crosses(asset: str, a: str, b: str) -> bool:
    """Whether ``asset`` may cross between banks ``a`` and ``b`` (docs/protocol.md §13)."""
    return UAI.parse(asset).issuer_validator in (a, b)


def plan_route(banks: Banks, payee_bank: str, asset: str, receive: int,
               via: tuple[str, ...] = ()) -> RoutePlan:
    """The route a payment of ``asset`` to a customer of ``payee_bank`` takes so that the
    payee gets ``receive``: through ``via`` if given, else the shortest, then cheapest.

    Raises:
        BankError: (``route_refused``) no route, or a named hop that does not hand it on.
    """
    explorer = _Explorer(banks)
    home = banks.home()
    if via:
        return _along(explorer, home, payee_bank, asset, receive, via)
    level: list[tuple[Bank, str, tuple[Hop, ...]]] = [(home, asset, ())]
    seen = {home.name}
    for _ in range(MAX_VIA + 1):
        found: list[RoutePlan] = []
        following: list[tuple[Bank, str, tuple[Hop, ...]]] = []
        for bank, holding, hops in level:
            for peer in explorer.peers(bank).values():
                if not _crosses(holding, bank.name, peer.name):
                    continue
                if peer.name == payee_bank:
                    if hops:
                        found.append(_plan(hops, peer, asset, receive, holding))
                    continue
                if peer.name in seen or len(hops) == MAX_VIA:
                    continue  # (met nearer already: a longer way through it is never chosen)
                terms = _reachable_terms(explorer, peer)
                if terms is not None and holding in terms.accept and _same_code(terms, asset):
                    following.append((peer, terms.pay, (*hops, Hop(peer, terms))))
        if found:
            return min(found, key=lambda plan: plan.pays)
        seen |= {bank.name for bank, _, _ in following}  # each way there, cheap or not, kept
        level = following
    raise BankError(f"no route from {home.name} to {payee_bank} hands on {asset}: no chain of "
                    "banks that pin each other in turn takes it", code=RouteRefusedError.code)


def _same_code(terms: Terms, asset: str) -> bool:
    """A route changes no asset code (an exchange on the way is out of scope)."""
    return UAI.parse(terms.pay).code == UAI.parse(asset).code


def _reachable_terms(explorer: _Explorer, bank: Bank) -> Terms | None:
    try:
        return explorer.terms(bank)
    except BankError:  # down or unreachable: not on a route now
        return None


def _along(explorer: _Explorer, home: Bank, payee_bank: str, asset: str, receive: int,
           via: tuple[str, ...]) -> RoutePlan:
    """The route through exactly ``via``, each hop checked as the search would."""
    bank, holding = home, asset
    hops: tuple[Hop, ...] = ()
    for name in (*via, payee_bank):
        peers = explorer.peers(bank)
        if name not in peers:
            raise BankError(f"{name} is not a peer of {bank.name}: the route breaks there",
                            code=RouteRefusedError.code)
        nxt = peers[name]
        if not _crosses(holding, bank.name, nxt.name):
            raise BankError(f"{bank.name} cannot hand {holding} to {nxt.name}: an IOU of a "
                            "third bank does not cross", code=RouteRefusedError.code)
        if name == payee_bank:
            return _plan(hops, nxt, asset, receive, holding)
        terms = explorer.terms(nxt)
        if terms is None or holding not in terms.accept or not _same_code(terms, asset):
            raise BankError(f"{name} does not hand on {holding}: it takes "
                            f"{', '.join(terms.accept) if terms else 'nothing'}",
                            code=RouteRefusedError.code)
        bank, holding, hops = nxt, terms.pay, (*hops, Hop(nxt, terms))
    raise AssertionError("unreachable")  # the loop returns at the payee's bank


def _plan(hops: tuple[Hop, ...], payee: Bank, asset: str, receive: int, delivers: str
          ) -> RoutePlan:
    return RoutePlan(hops, payee, asset, receive + sum(h.terms.fee for h in hops), receive,
                     delivers)


def payee_record(banks: Banks, plan: RoutePlan, address: str) -> dict[str, Any]:
    """The payee's signed record, from its bank, checked against the key the last
    correspondent pinned for it."""
    _, bank_name = parse_address(address)
    answer = banks.client(plan.payee_bank).lookup("name", address)
    record = verify_record(answer, plan.payee_bank.key)
    if record.get("address") != address or bank_name != plan.payee_bank.name:
        raise SecurityError(f"{plan.payee_bank.name} answered for {record.get('address')} "
                            f"when asked for {address}")
    return record


def show_route(ctx: click.Context, plan: RoutePlan | None, address: str, amount: str,
               asset: str) -> None:
    """Print the route a payment would take, and its cost (``pay --dry-run``)."""
    if plan is None:
        emit(ctx, {"via": [], "pays": amount, "receive": amount, "asset": asset},
             f"direct to {address}'s bank: you pay {amount} {asset}, no fee")
        return
    emit(ctx, plan.to_dict(), plan.describe())
