"""Generated lies: hypothesis builds bank 2's messages from real entries of two real banks,
replayed, re-wrapped, mutated and signed again, and made up; after every message bank 1's
books balance, no peer holds less than none of an IOU, and its audit is clean."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tchain.clock import now_ms
from tchain.encoding import parse
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.values import UAI
from tests.campaign import report, scale
from tests.helpers import Customer
from tests.hostile.conftest import B1, B2
from tests.hostile.harness import HostilePeer, audit_clean, books_balance, open_offer
from tests.realbanks import read, register, submit
from validator.operator import deposit

USD, EUR1, EUR2 = f"{B1}:USD", f"{B1}:EUR", f"{B2}:EUR"
ASSETS = [USD, EUR1, EUR2, "bank3.example:USD", f"carol*{B1}:PTS", f"dave*{B2}:PTS"]


class Material:
    """Real things to lie with: bank 2's customers (the test holds their keys, as a bank
    holds what it needs to forge for made-up customers), their real holds to bank 1's
    customers, bank 1's customers and a real open offer of theirs."""

    def __init__(self, b1: Any, b2: Any) -> None:
        self.payees = [register(b1, f"payee{i}") for i in range(2)]
        self.payers = [register(b2, f"payer{i}") for i in range(2)]
        self.holds: list[tuple[Customer, dict[str, Any]]] = []
        for i, payer in enumerate(self.payers):
            deposit(b2.config, payer.name, "100000", "EUR")
            r = submit(b2, payer, "payment", {"to": self.payees[i].chain, "to_validator": B1,
                                              "asset": EUR2, "amount": str(10 + i)})
            assert r.status_code in (201, 202), r.text
            self.holds.append((payer, r.json()["entries"][0]))
        _, self.offer = open_offer(b1, "gen-maker", (USD, "100"), (EUR2, "90"))
        self.sent: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def material(pair):
    return Material(*pair)


LIES: Counter[str] = Counter()  # what the stories told, by kind
SHOWN = [64]
amounts = st.integers(min_value=1, max_value=10**12)
lies = st.one_of(
    st.tuples(st.just("replay"), st.integers(0, 50)),
    st.tuples(st.just("rewrap"), st.integers(0, 1), st.integers(1, 10**6)),
    st.tuples(st.just("mutate"), st.integers(0, 1),
              st.sampled_from(["amount", "asset", "held", "to", "unsigned"]),
              st.sampled_from(ASSETS), amounts),
    st.tuples(st.just("forge"), st.sampled_from(ASSETS), amounts, st.booleans()),
    st.tuples(st.just("take"), st.sampled_from(ASSETS), amounts, st.booleans()),
)


def _mutated(liar: HostilePeer, material: Material, index: int, what: str, asset: str,
             amount: int) -> dict[str, Any]:
    """A real hold changed and signed again: by its customer where the lie needs the intent
    changed (the test holds the key), by bank 2 always."""
    payer, hold = material.holds[index]
    entry = copy.deepcopy(hold["entry"])
    intent = entry["intent"]["intent"]
    body = intent["body"]
    if what == "amount":
        body["amount"] = str(amount)
    elif what == "asset":
        body["asset"] = asset
    elif what == "to":
        body["to"] = material.payees[1 - index].chain
    if what in ("amount", "asset", "to"):
        entry["intent"] = sign_intent(payer.key, "payment", intent["chain"], intent["seq"],
                                      intent["time"], body)
        entry["effects"] = [{"asset": body["asset"], "balance": "0", "held": body["amount"]}]
    elif what == "held":
        entry["effects"] = [{"asset": body["asset"], "balance": "0", "held": str(amount)}]
    elif what == "unsigned":
        entry["intent"]["sig"] = SigningKey.generate().sign("intent", intent)
    signed = liar.entry(chain=entry["chain"], kind="payment", intent=entry["intent"],
                        effects=entry["effects"], height=entry["height"], time=entry["time"])
    return liar.transfer(signed, liar.record(entry["chain"], payer.key.public_key, payer.name))


def _must_refuse(b1: Any, lie: tuple[Any, ...]) -> set[str]:
    """The codes an honest bank 1 must refuse this lie with (empty: no rule decides it from
    the lie alone, the books and the audit still must hold)."""
    kind = lie[0]
    if kind == "mutate" and lie[2] == "unsigned":
        return {"bad_signature"}
    if kind == "mutate" and lie[2] == "held" and lie[4] not in (10, 11):
        return {"bad_request"}
    asset = lie[3] if kind == "mutate" and lie[2] == "asset" else \
        lie[1] if kind in ("forge", "take") and not (kind == "take" and lie[3]) else None
    if asset is None or (kind == "take" and asset == USD):
        return set()
    issuer = UAI.parse(asset).issuer_validator
    if issuer not in (B1, B2):
        return {"foreign_asset"}
    amount = 10 + lie[1] if kind == "mutate" else lie[2]  # a mutated hold keeps its amount
    if issuer == B1:
        position = read(b1, lambda r: r.position(B2, asset))
        if amount > position.held - position.incoming + position.outgoing:
            return {"position_exceeded"}
    return set()


def _message(liar: HostilePeer, material: Material, lie: tuple[Any, ...]) -> dict[str, Any]:
    kind = lie[0]
    if kind == "replay" and material.sent:
        return material.sent[lie[1] % len(material.sent)]
    if kind in ("replay", "rewrap"):
        payer, hold = material.holds[lie[1] if kind == "rewrap" else 0]
        time = now_ms() + (lie[2] if kind == "rewrap" else 0)
        return liar.transfer(hold, liar.record(hold["entry"]["chain"], payer.key.public_key,
                                               payer.name), time=time)
    if kind == "mutate":
        return _mutated(liar, material, *lie[1:])
    if kind == "forge":
        _, asset, amount, to_first = lie
        payee = material.payees[0 if to_first else 1]
        return liar.transfer(*liar.forged_hold(payee.chain, asset, amount))
    _, asset, amount, mirror = lie  # a take of bank 1's real offer (which sells USD)
    if mirror or asset == USD:
        asset = EUR2
    sell = {"asset": asset, "amount": "90" if mirror else str(amount)}
    return liar.forged_take(material.offer, sell, {"asset": USD, "amount": "100"})


@settings(max_examples=scale(30, 600), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(story=st.lists(lies, min_size=1, max_size=5))
def test_no_lie_makes_money_or_breaks_the_books(pair, material, story):
    b1, b2 = pair
    liar = HostilePeer(b2, b1)
    for lie in story:
        must = _must_refuse(b1, lie)
        doc = _message(liar, material, lie)
        response = liar.post(doc)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            material.sent.append(doc)
            answer = parse(response.content)["message"]
            if must:
                assert answer["type"] == "refused" and answer["error"] in must, (lie, answer)
        books_balance(b1)
    audit_clean(b1)
    LIES.update(lie[0] for lie in story)
    if sum(LIES.values()) >= SHOWN[0]:  # a line now and then: hypothesis has no last call
        SHOWN[0] *= 2
        report("generated lies", messages=sum(LIES.values()), **dict(LIES),
               proofs=len(read(b1, lambda r: r.records("proofs"))))
