"""The shapes of a routed payment (docs/protocol.md §3 "Routes") and a correspondent's terms
(tchain.route): what parses, what is refused, and what a correspondent hands on."""

from __future__ import annotations

from typing import Any

import pytest

from tchain.errors import EncodingError, RouteRefusedError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.model import PaymentBody, Route, SignedIntent
from tchain.route import Terms

KEY = SigningKey.generate()
B2, B3 = SigningKey.generate().public_key, SigningKey.generate().public_key
KEYS = {"bank2.example": B2, "bank3.example": B3}
PAYEE = "cd" * 32
USD = "bank1.example:USD"


def _body(kind: str = "payment", **fields: Any) -> PaymentBody:
    body = {"to": PAYEE, "to_validator": "bank3.example", "asset": USD, "amount": "101",
            **fields}
    parsed = SignedIntent.from_dict(sign_intent(KEY, kind, "ab" * 32, 1, 0, body)).body
    assert isinstance(parsed, PaymentBody)
    return parsed


def test_a_payer_s_route_names_its_banks_and_what_the_payee_gets():
    body = _body(via=["bank2.example"], receive="100", keys=KEYS)
    assert body.route == Route(("bank2.example",), 100, None,
                               (("bank2.example", B2), ("bank3.example", B3)))
    assert body.route.key_of("bank3.example") == B3
    assert _body().route is None  # a payment without a route: the bytes it always had


def test_a_correspondent_s_hold_names_what_it_forwards_and_the_banks_left():
    assert _body(forward="ef" * 32, via=[]).route == Route((), None, "ef" * 32)


@pytest.mark.parametrize("fields", [
    {"via": ["bank2.example"], "receive": "100"},  # no keys
    {"via": ["bank2.example"], "receive": "100", "keys": {"bank2.example": B2}},  # one short
    {"via": ["bank2.example"], "receive": "100", "keys": {**KEYS, "bank4.example": B2}},
    {"via": ["bank2.example"], "receive": "100", "keys": {**KEYS, "bank3.example": "00"}},
    {"forward": "ef" * 32, "keys": KEYS},  # a correspondent restates no keys
    {"via": ["bank2.example"]},  # no receive
    {"receive": "100"},  # no via
    {"via": [], "receive": "100"},  # a payer's route through nobody
    {"via": ["bank2.example"], "receive": "102"},  # more than the amount
    {"via": ["bank3.example"], "receive": "100"},  # through the payee's bank
    {"via": ["bank2.example", "bank2.example"], "receive": "100"},  # twice
    {"via": ["b2.example", "b4.example", "b5.example", "b6.example"], "receive": "100"},
    {"forward": "ef" * 32, "receive": "100"},  # a correspondent restates no receive
    {"forward": "nope"},
    {"via": "bank2.example", "receive": "100"},
])
def test_a_malformed_route_is_refused(fields: dict[str, Any]):
    with pytest.raises(EncodingError):
        _body(**fields)


def test_an_issue_takes_no_route():
    with pytest.raises(EncodingError):
        _body("issue", via=["bank2.example"], receive="100", keys=KEYS)


def test_terms_hand_on_at_par_less_the_fee():
    terms = Terms((USD,), "bank2.example:USD", 2)
    assert terms.hands_on(USD, 101) == 99
    assert Terms.from_dict(terms.to_dict()) == terms
    with pytest.raises(RouteRefusedError):
        terms.hands_on("bank1.example:EUR", 101)
    with pytest.raises(RouteRefusedError):
        terms.hands_on(USD, 2)
    with pytest.raises(EncodingError):
        Terms.from_dict({"accept": USD, "pay": USD, "fee": "1"})


def test_terms_with_a_limit_keep_it_and_terms_without_keep_their_bytes():
    limited = Terms((USD,), "bank2.example:USD", 1, 150)
    assert Terms.from_dict(limited.to_dict()) == limited
    assert "limit" not in Terms((USD,), "bank2.example:USD", 1).to_dict()
    limited.check_limit("bank1.example", USD, 150)
    limited.check_limit("bank3.example", USD, 10**6)  # not that peer's IOU: ours to hand back
    with pytest.raises(RouteRefusedError, match="at most 150"):
        limited.check_limit("bank1.example", USD, 151)
    with pytest.raises(EncodingError):
        Terms.from_dict({**limited.to_dict(), "limit": "-1"})


def test_terms_that_change_the_asset_code_hand_nothing_on():
    with pytest.raises(RouteRefusedError, match="changes no asset code"):
        Terms((USD,), "bank2.example:JPY", 1).hands_on(USD, 101)
