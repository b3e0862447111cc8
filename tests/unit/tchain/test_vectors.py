"""The golden vectors in tests/vectors/ (also printed in docs/protocol.md): the code must
reproduce them byte for byte, and the sample chain must verify."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tchain.digest import digest
from tchain.encoding import canonical, parse
from tchain.model import SignedEntry
from tchain.plans import Execution, LogDoc, Plan
from tchain.verify import verify_chain
from tests.vectors.generate import (
    bids_vector,
    canonical_vectors,
    chain_vector,
    fills_vector,
    locks_vector,
    plans_vector,
)

VECTORS = Path(__file__).parents[2] / "vectors"
CANONICAL = json.loads((VECTORS / "canonical.json").read_text("utf-8"))
CHAIN = json.loads((VECTORS / "chain.json").read_text("utf-8"))
FILLS = json.loads((VECTORS / "fills.json").read_text("utf-8"))
BIDS = json.loads((VECTORS / "bids.json").read_text("utf-8"))
LOCKS = json.loads((VECTORS / "locks.json").read_text("utf-8"))
PLANS = json.loads((VECTORS / "plans.json").read_text("utf-8"))
PROTOCOL = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text("utf-8")


@pytest.mark.parametrize("vector", CANONICAL, ids=[v["name"] for v in CANONICAL])
def test_canonical_bytes_and_digest_match_the_golden_file(vector):
    value = parse(vector["input"].encode("utf-8"))
    assert canonical(value).hex() == vector["canonical_hex"]
    assert digest(vector["kind"], value).hex() == vector["digest_hex"]


def test_the_generator_reproduces_the_golden_files_exactly():
    assert canonical_vectors() == CANONICAL
    assert chain_vector() == CHAIN


def test_the_golden_chain_verifies_and_its_ids_match():
    state = verify_chain(CHAIN["entries"], CHAIN["validator_key"], CHAIN["validator_name"],
                         CHAIN["chain"])
    assert [SignedEntry.from_dict(e).id for e in CHAIN["entries"]] == CHAIN["entry_ids"]
    assert state.balances["bank1.example:USD"].balance == 100000 - 1050
    assert CHAIN["entry_ids"][0] == CHAIN["chain"]


def test_stored_bytes_are_the_canonical_form_of_the_signed_entry():
    for doc in CHAIN["entries"]:
        entry = SignedEntry.from_dict(doc)
        assert entry.to_bytes() == canonical(doc)
        assert SignedEntry.from_bytes(entry.to_bytes()) == entry


def test_the_protocol_page_prints_the_golden_values():
    """docs/protocol.md §9 shows the vectors byte for byte: the genesis, the ids, the table."""
    section = PROTOCOL[PROTOCOL.index("## 9. Golden vectors"):PROTOCOL.index("## 10.")]
    assert "```json\n" + json.dumps(CHAIN["entries"][0], indent=2) + "\n```" in section
    assert f"`{CHAIN['chain']}`" in section and f"`{CHAIN['validator_key']}`" in section
    for entry_id in CHAIN["entry_ids"]:
        assert f"`{entry_id[:8]}…{entry_id[-4:]}`" in section
    printed = [v for v in CANONICAL if f"| {v['name']} |" in section]
    assert len(printed) >= 5
    for vector in printed:
        assert f"| `{vector['canonical_hex']}` | `{vector['digest_hex']}` |" in section


def test_the_generator_reproduces_the_fill_vectors_exactly():
    assert fills_vector() == FILLS


def test_the_fill_vector_chains_verify_with_the_rest_of_the_offer_held():
    alice = verify_chain(FILLS["entries"]["alice"], FILLS["validator_key"],
                         FILLS["validator_name"], FILLS["chains"]["alice"])
    bob = verify_chain(FILLS["entries"]["bob"], FILLS["validator_key"],
                       FILLS["validator_name"], FILLS["chains"]["bob"])
    usd, eur = "bank1.example:USD", "bank1.example:EUR"
    assert (alice.balances[usd].balance, alice.balances[usd].held) == (970, 70)
    assert alice.balances[eur].balance == 27 and alice.holds[FILLS["offer"]].amount == 70
    assert (bob.balances[usd].balance, bob.balances[eur].balance) == (30, 973)
    fill = SignedEntry.from_dict(FILLS["entries"]["alice"][-1])
    assert (fill.kind, fill.id, fill.evidence_entry(0).id) == ("fill", FILLS["fill"],
                                                               FILLS["take"])


def test_the_protocol_page_prints_the_fill_vector():
    section = PROTOCOL[PROTOCOL.index("## 9. Golden vectors"):PROTOCOL.index("## 10.")]
    assert "```json\n" + json.dumps(FILLS["entries"]["alice"][-1], indent=2) + "\n```" in section
    for entry_id in (FILLS["offer"], FILLS["take"], FILLS["fill"]):
        assert f"`{entry_id[:8]}…{entry_id[-4:]}`" in section


def test_the_generator_reproduces_the_bid_vectors_exactly():
    assert bids_vector() == BIDS


def test_the_bid_vector_chains_verify_and_the_maker_got_the_bid():
    alice, bob = (verify_chain(BIDS["entries"][n], BIDS["validator_key"],
                               BIDS["validator_name"], BIDS["chains"][n])
                  for n in ("alice", "bob"))
    usd, eur = "bank1.example:USD", "bank1.example:EUR"
    assert (alice.balances[usd].balance, alice.balances[usd].held) == (970, 70)
    assert alice.balances[eur].balance == 33  # what bob bid, not the price (27)
    assert (bob.balances[usd].balance, bob.balances[eur].balance) == (30, 967)
    offer = SignedEntry.from_dict(BIDS["entries"]["alice"][-2])
    fill = SignedEntry.from_dict(BIDS["entries"]["alice"][-1])
    assert offer.intent is not None and offer.intent.doc["intent"]["body"]["window"] == 1000
    assert fill.time >= offer.time + 1000  # decided when the window closed
    assert (fill.kind, fill.id, fill.evidence_entry(0).id) == ("fill", BIDS["fill"],
                                                               BIDS["take"])


def test_the_protocol_page_prints_the_bid_vector():
    section = PROTOCOL[PROTOCOL.index("## 9. Golden vectors"):PROTOCOL.index("## 10.")]
    assert "```json\n" + json.dumps(BIDS["entries"]["alice"][-2], indent=2) + "\n```" in section
    fill = BIDS["entries"]["alice"][-1]["entry"]["effects"]
    assert "```json\n" + json.dumps(fill) + "\n```" in section
    for entry_id in (BIDS["offer"], BIDS["take"], BIDS["fill"]):
        assert f"`{entry_id[:8]}…{entry_id[-4:]}`" in section


def test_the_generator_reproduces_the_lock_vectors_exactly():
    assert locks_vector() == LOCKS


def test_the_lock_vector_chains_verify_and_the_claim_shows_the_preimage():
    alice = verify_chain(LOCKS["entries"]["alice"], LOCKS["validator_key"],
                         LOCKS["validator_name"], LOCKS["chains"]["alice"])
    bob = verify_chain(LOCKS["entries"]["bob"], LOCKS["validator_key"],
                       LOCKS["validator_name"], LOCKS["chains"]["bob"])
    usd = "bank1.example:USD"
    assert (alice.balances[usd].balance, alice.balances[usd].held) == (700, 0)
    assert bob.balances[usd].balance == 300
    claim = SignedEntry.from_dict(LOCKS["entries"]["bob"][-1])
    settle = SignedEntry.from_dict(LOCKS["entries"]["alice"][-1])
    assert (claim.kind, claim.id, claim.evidence_entry(0).id) == ("claim", LOCKS["claim"],
                                                                 LOCKS["lock"])
    assert claim.intent.body.preimage == LOCKS["preimage"]
    assert hashlib.sha256(bytes.fromhex(LOCKS["preimage"])).hexdigest() == LOCKS["hash"]
    assert (settle.kind, settle.evidence_entry(0).id) == ("settle", LOCKS["claim"])


def test_the_protocol_page_prints_the_lock_vector():
    section = PROTOCOL[PROTOCOL.index("## 9. Golden vectors"):PROTOCOL.index("## 10.")]
    assert "```json\n" + json.dumps(LOCKS["entries"]["bob"][-1], indent=2) + "\n```" in section
    for entry_id in (LOCKS["lock"], LOCKS["claim"], LOCKS["settle"]):
        assert f"`{entry_id[:8]}…{entry_id[-4:]}`" in section
    assert LOCKS["preimage"] in section and LOCKS["hash"] in section
def test_the_generator_reproduces_the_plan_vectors_exactly():
    assert plans_vector() == PLANS


def test_the_plan_vector_parses_approves_and_its_hold_verifies():
    plan = Plan.from_dict(PLANS["plan"])
    assert plan.digest == PLANS["plan_digest"]
    assert canonical(PLANS["plan"]).hex() == PLANS["plan_canonical_hex"]
    assert digest("plan", PLANS["plan"]).hex() == PLANS["plan_digest"]
    keys = {"bank1.example": PLANS["validator_key"], "bank2.example": PLANS["bank2_key"],
            "bank3.example": PLANS["bank2_key"]}
    ex = Execution.start(LogDoc.from_dict(PLANS["proposal"]), keys)
    ex = ex.append(LogDoc.from_dict(PLANS["approval"]))
    assert ex.approvals.keys() == {"bank1.example"} and ex.state == "proposed"
    assert ex.docs[-1].id == PLANS["approval_id"]
    alice = verify_chain(PLANS["entries"], PLANS["validator_key"], PLANS["validator_name"],
                         PLANS["chain"])
    usd = "bank1.example:USD"
    assert (alice.balances[usd].balance, alice.balances[usd].held) == (5000, 1000)
    hold = SignedEntry.from_dict(PLANS["entries"][-1])
    assert (hold.kind, hold.id, hold.intent.doc) == ("plan", PLANS["hold"], PLANS["consent"])
    assert hold.intent.id == ex.consents[1].id


def test_the_protocol_page_prints_the_plan_vectors():
    section = PROTOCOL[PROTOCOL.index("## 14."):]
    assert "```json\n" + json.dumps(PLANS["plan"], indent=2) + "\n```" in section
    assert "```json\n" + json.dumps(PLANS["entries"][-1], indent=2) + "\n```" in section
    assert f"`{PLANS['plan_digest']}`" in section and f"`{PLANS['chain']}`" in section
