"""The golden vectors of a payment through a correspondent (tests/vectors/routes.json, printed
in docs/protocol.md §9): reproduced byte for byte, every chain verifying offline, the
correspondent's receipt checking as the payer's bank checks it; and of the proof kept when
the correspondent keeps the payment (tests/vectors/route_unpaid.json, §12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tchain.errors import VerificationError
from tchain.keys import SigningKey
from tchain.messages import Message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.route import check_route_credit
from tchain.verify import verify_chain
from tests.vectors.routes import route_unpaid_vector, routes_vector

VECTOR = json.loads((Path(__file__).parents[2] / "vectors" / "routes.json").read_text())
PROTOCOL = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text("utf-8")
BANK_OF = {"alice": "bank1.example", "bank2": "bank2.example", "carol": "bank3.example"}


def test_the_generator_reproduces_the_route_vector_exactly():
    assert routes_vector() == VECTOR


def test_every_chain_of_the_route_verifies_offline():
    states = {name: verify_chain(entries, VECTOR["validator_keys"][BANK_OF[name]],
                                 BANK_OF[name], VECTOR["chains"][name])
              for name, entries in VECTOR["entries"].items()}
    assert states["alice"].balances["bank1.example:USD"].balance == 399
    assert states["carol"].balances["bank2.example:USD"].balance == 100
    bank2 = states["bank2"].balances
    assert (bank2["bank1.example:USD"].balance, bank2["bank2.example:USD"].balance) == (101, -100)
    assert all(not s.holds for s in states.values())


def test_the_correspondent_s_credited_answer_checks_as_its_receipt():
    answer = Message.from_dict(VECTOR["credited"])
    answer.verify(VECTOR["validator_keys"]["bank2.example"])
    hold = SignedEntry.from_dict(VECTOR["entries"]["alice"][2])
    check_route_credit(answer.entries["credit"], hold, answer.fields["next"])
    assert answer.fields["next"] == {"name": "bank3.example",
                                     "key": VECTOR["validator_keys"]["bank3.example"]}


def test_the_protocol_page_prints_the_route_vector():
    section = PROTOCOL[PROTOCOL.index("## 9. Golden vectors"):PROTOCOL.index("## 10.")]
    forwarding = VECTOR["entries"]["bank2"][1]
    assert "```json\n" + json.dumps(forwarding["entry"]["intent"], indent=2) + "\n```" in section
    for name, entries in VECTOR["entries"].items():
        for doc in entries[1:]:
            entry_id = SignedEntry.from_dict(doc).id
            assert f"`{entry_id[:8]}…{entry_id[-4:]}`" in section, (name, entry_id)


UNPAID = json.loads((Path(__file__).parents[2] / "vectors" / "route_unpaid.json").read_text())


def test_the_generator_reproduces_the_route_unpaid_vector_exactly():
    assert route_unpaid_vector() == UNPAID


def test_the_route_unpaid_vector_proves_bank2_and_the_protocol_page_prints_it():
    shown = verify_proof(UNPAID["proof"])
    assert shown.type == "route_unpaid"
    assert shown.culprit == UNPAID["validator_keys"]["bank2.example"]
    assert "bank2.example took 101 bank1.example:USD" in shown.summary
    section = PROTOCOL[PROTOCOL.index("**Route unpaid"):PROTOCOL.index("**Double settlement")]
    assert f"`{UNPAID['proof_digest']}`" in section


def test_the_route_unpaid_vector_with_the_next_bank_s_credit_proves_nothing():
    """The honest route's answer (routes.json: bank2's credit carries bank3's) in the same
    proof, signed anew by bank1: bank2 passed the payment on, so nothing is proven."""
    key = SigningKey(bytes.fromhex(UNPAID["seeds"]["bank1.example"]))
    proof = {k: v for k, v in UNPAID["proof"].items() if k != "sig"}
    proof["answer"] = VECTOR["credited"]
    proof["hold"] = VECTOR["entries"]["alice"][2]
    proof["reporter"] = key.public_key
    proof["sig"] = key.sign("proof", proof)
    with pytest.raises(VerificationError, match="passed the payment on"):
        verify_proof(proof)
    tampered = {**UNPAID["proof"], "time": UNPAID["proof"]["time"] + 1}
    with pytest.raises(VerificationError, match="signature"):
        verify_proof(tampered)
