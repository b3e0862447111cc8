"""The offline verifier against a route's lies (attack 13; tchain.route_checks): a payee's
chain whose credit carries a hop that changed the asset code, or one signed by a key the
payer did not sign for that bank, does not verify. Built from the route vector's seeded keys,
so each lie is exactly the vector's payment with one thing changed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tchain.errors import VerificationError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.verify import verify_chain
from tests.helpers import sign_entry_as

VECTOR = json.loads((Path(__file__).parents[2] / "vectors" / "routes.json").read_text())
SEEDS = VECTOR["seeds"]
BANK2 = SigningKey(bytes.fromhex(SEEDS["bank2.example"]))
BANK3 = SigningKey(bytes.fromhex(SEEDS["bank3.example"]))


def _carol_credited(asset: str, signer: SigningKey) -> list[dict[str, Any]]:
    """Carol's chain, credited by bank3 with bank2's hold forwarding alice's, that hold paying
    ``asset`` and signed (entry and intent) by ``signer`` as bank2."""
    alice_hold = SignedEntry.from_dict(VECTOR["entries"]["alice"][2])
    real = SignedEntry.from_dict(VECTOR["entries"]["bank2"][1])
    assert real.intent is not None
    body = {**real.intent.doc["intent"]["body"], "asset": asset}
    intent = sign_intent(signer, "payment", real.chain, 1, real.time, body)
    hold = sign_entry_as(signer, {
        **real.doc["entry"], "intent": intent, "validator": signer.public_key,
        "effects": [{"asset": asset, "balance": "0", "held": "100"}],
        "evidence": [alice_hold.doc]})
    carol = copy.deepcopy(VECTOR["entries"]["carol"])
    credit = SignedEntry.from_dict(carol[1])
    carol[1] = sign_entry_as(BANK3, {
        **credit.doc["entry"], "evidence": [hold.doc],
        "effects": [{"asset": asset, "balance": "100", "held": "0"}]}).doc
    return carol


def _verify(entries: list[dict[str, Any]]) -> None:
    verify_chain(entries, BANK3.public_key, "bank3.example", VECTOR["chains"]["carol"])


def test_the_forged_control_chain_verifies():
    _verify(_carol_credited("bank2.example:USD", BANK2))  # the lie below is the only change


def test_a_payee_chain_paid_in_another_asset_code_than_the_payer_s_does_not_verify():
    with pytest.raises(VerificationError, match="changes no asset code"):
        _verify(_carol_credited("bank2.example:JPY", BANK2))


def test_a_payee_chain_with_a_hop_under_a_key_the_payer_did_not_sign_does_not_verify():
    with pytest.raises(VerificationError, match="the payer signed"):
        _verify(_carol_credited("bank2.example:USD", SigningKey.generate()))
