"""The golden vector of a payment through a correspondent (tests/vectors/routes.json, printed
in docs/protocol.md §9): reproduced byte for byte, every chain verifying offline, the
correspondent's receipt checking as the payer's bank checks it."""

from __future__ import annotations

import json
from pathlib import Path

from tchain.messages import Message
from tchain.model import SignedEntry
from tchain.route import check_route_credit
from tchain.verify import verify_chain
from tests.vectors.routes import routes_vector

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
