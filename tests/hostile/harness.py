"""A hostile peer harness: two real banks on loopback, and the key of the second in the test's
hands, so that the test signs whatever a dishonest bank could send the first.

Bank 2 is a real validator (its customers register and pay as anywhere); what makes it hostile
is that the test holds its key (read from its data directory) and posts, as bank 2, messages an
honest bank 2 would never send: forged holds and takes, real holds re-wrapped or mutated and
signed again, answers posted as requests. After every message the honest bank's books must hold
(:func:`books_balance`) and its audit must be clean (:func:`audit_clean`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import requests

from cli.local import LocalBank
from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical, parse
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.records import make_record
from tchain.values import UAI
from tests.helpers import Customer, sign_entry_as
from tests.realbanks import read, register, submit
from validator.audit import audit
from validator.config import open_ledger
from validator.operator import deposit

PEER_PATH = "/v1/peer/messages"


@dataclass
class HostilePeer:
    """Bank 2's key, signing for the test."""

    bank: LocalBank
    target: LocalBank
    key: SigningKey = field(init=False)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = self.bank.config.signing_key()

    @property
    def name(self) -> str:
        return self.bank.name

    def post(self, doc: Any, path: str = PEER_PATH) -> requests.Response:
        """Post ``doc`` to the target as bank 2 (a valid Authorization by bank 2's key)."""
        body = doc if isinstance(doc, bytes) else canonical(doc)
        self.sent.append(doc)
        return requests.post(self.target.url + path, data=body, timeout=30, headers={
            "Authorization": authorization_header(self.key, "POST", path, "", body, now_ms(),
                                                  bank=self.target.name)})

    def answer_of(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Post one message; return the target's signed answer (its message part)."""
        response = self.post(doc)
        assert response.status_code == 200, response.text
        return dict(parse(response.content)["message"])

    def sign(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Any message, as bank 2 signs it, to the target."""
        return sign_message(self.key, type_, self.name, self.target.name, now_ms(), **fields)

    def record(self, chain: str, owner: str, name: str = "mallory") -> dict[str, Any]:
        return make_record(self.key, address=f"{name}*{self.name}", owner=owner, chain=chain,
                           validator=self.name)

    def entry(self, *, chain: str, kind: str, intent: dict[str, Any] | None,
              effects: list[dict[str, str]], evidence: list[dict[str, Any]] | None = None,
              height: int = 1, time: int | None = None) -> SignedEntry:
        """An entry signed by bank 2's key, outside any rule: what a cheat can sign."""
        return sign_entry_as(self.key, {
            "chain": chain, "height": height, "prev": os.urandom(32).hex(),
            "time": time or now_ms(), "kind": kind, "intent": intent, "effects": effects,
            "evidence": evidence or [], "validator": self.key.public_key})

    def forged_hold(self, payee: str, asset: str, amount: int, *, held: int | None = None,
                    intent_sig: str | None = None, to_bank: str | None = None
                    ) -> tuple[SignedEntry, dict[str, Any]]:
        """A hold of a customer bank 2 makes up (a key it holds), and its key record."""
        payer = SigningKey.generate()
        chain = SigningKey.generate().public_key
        intent = sign_intent(payer, "payment", chain, 1, now_ms(), {
            "to": payee, "to_validator": to_bank or self.target.name, "asset": asset,
            "amount": str(amount)})
        if intent_sig is not None:
            intent["sig"] = intent_sig
        hold = self.entry(chain=chain, kind="payment", intent=intent, effects=[
            {"asset": asset, "balance": "0", "held": str(amount if held is None else held)}])
        return hold, self.record(chain, payer.public_key)

    def transfer(self, hold: SignedEntry | dict[str, Any], payer: dict[str, Any], *,
                 time: int | None = None, deadline_ms: int = 30_000) -> dict[str, Any]:
        doc = hold.doc if isinstance(hold, SignedEntry) else hold
        at = time or now_ms()
        return sign_message(self.key, "transfer", self.name, self.target.name, at, hold=doc,
                            payer=payer, deadline=at + deadline_ms, kyc_required=False)

    def forged_take(self, offer: SignedEntry, sell: dict[str, str], buy: dict[str, str]
                    ) -> dict[str, Any]:
        """A take of ``offer`` by a customer bank 2 makes up, paying ``sell`` for ``buy``."""
        taker = SigningKey.generate()
        chain = SigningKey.generate().public_key
        intent = sign_intent(taker, "take", chain, 1, now_ms(), {
            "offer": offer.id, "validator": self.target.name, "sell": sell, "buy": buy})
        take = self.entry(chain=chain, kind="take", intent=intent, effects=[
            {"asset": sell["asset"], "balance": "0", "held": sell["amount"]}])
        at = now_ms()
        return sign_message(self.key, "take", self.name, self.target.name, at, take=take.doc,
                            taker=self.record(chain, taker.public_key), deadline=at + 30_000)


def open_offer(bank: LocalBank, maker: str, sell: tuple[str, str], buy: tuple[str, str]
               ) -> tuple[Customer, SignedEntry]:
    """A real offer of a new customer of ``bank`` (its maker, the offer entry), funded by a
    deposit of what it sells."""
    customer = register(bank, maker)
    deposit(bank.config, maker, "100000", sell[0].rpartition(":")[2])
    r = submit(bank, customer, "offer", {"sell": {"asset": sell[0], "amount": sell[1]},
                                         "buy": {"asset": buy[0], "amount": buy[1]},
                                         "expires": now_ms() + 3_600_000})
    assert r.status_code == 201, r.text
    return customer, SignedEntry.from_dict(r.json()["entries"][0])


def books_balance(bank: LocalBank) -> dict[str, int]:
    """The target's invariant, read from its store: for every asset, the sum over its chains
    (as its books keep it) plus what its peers hold by its positions is zero, and the kept sum
    is the sum of the chains' states. Returns the kept sums."""
    def check(r: Any) -> dict[str, int]:
        totals = r.totals()
        summed: dict[str, int] = {}
        for chain in r.chain_ids(None, 10**6):
            for asset, b in r.state(chain).balances.items():
                summed[asset] = summed.get(asset, 0) + b.balance
        assert {a: t for a, t in totals.items() if t} == \
            {a: t for a, t in summed.items() if t}, (totals, summed)
        for asset in set(totals) | {a for _, a, _ in r.positions()}:
            assert totals.get(asset, 0) + r.held_by_peers(asset) == 0, asset
        for peer, asset, position in r.positions():
            issuer = UAI.parse(asset).issuer_validator
            assert issuer in (bank.name, peer), (peer, asset, position)
            # a peer never holds less than none of our IOU, nor we of its
            assert position.held >= 0 if issuer == bank.name else position.held <= 0, \
                (peer, asset, position)
            assert position.incoming >= 0 and position.outgoing >= 0
        return dict(totals)

    return dict(read(bank, check))


def audit_clean(bank: LocalBank) -> None:
    ledger = open_ledger(bank.config)
    try:
        report = audit(ledger)
    finally:
        ledger.store.close()
    assert report.ok, report.problems
