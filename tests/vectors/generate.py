"""Make the golden vectors in this folder (run: python3 -m tests.vectors.generate).

Deterministic: fixed seeds and a fixed clock, and Ed25519 signatures are deterministic, so the
output only changes if the encoding, the digests or the entry format change: which is exactly
what the vector tests are there to catch. Never regenerate them to make a failing test pass.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

from tchain.digest import digest
from tchain.encoding import canonical, parse
from tchain.htlc import hash_of
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry, SignedIntent
from tchain.plans import Plan, consent_body, plan_document, plan_id, sign_log
from tchain.records import make_record
from tchain.rules import BankIdentity, hold_for_plan
from validator.interbank import Interbank
from validator.ledger import Ledger
from validator.store import Store, Writer

HERE = Path(__file__).parent
T0 = 1_763_700_000_000
BANK = "bank1.example"
USD = f"{BANK}:USD"
SEEDS = {"bank": "01" * 32, "alice": "02" * 32, "bob": "03" * 32}

CANONICAL_INPUTS = [
    ("key order and whitespace", ' { "b" : 2 , "a" : 1 } ', "document"),
    ("nested objects sort recursively", '{"z":{"y":1,"x":[3,{"b":0,"a":0}]},"a":null}',
     "document"),
    ("unicode stays UTF-8, controls are escaped", '{"memo":"caf\\u00e9 \\u20ac \\n\\u0001"}',
     "intent"),
    ("key order is by UTF-16 code units", '{"\\u20ac":1,"\\ud83d\\ude00":2,"a":3}', "record"),
    ("the largest safe integer", '{"seq":9007199254740991,"t":true,"f":false}', "entry"),
    ("a payment intent", '{"type":"payment","chain":"' + "ab" * 32 + '","seq":7,'
     '"time":1763700000000,"body":{"to":"' + "cd" * 32 + '","to_validator":"bank2.example",'
     '"asset":"bank1.example:USD","amount":"1050","memo":"rent"}}', "intent"),
]


def canonical_vectors() -> list[dict[str, Any]]:
    out = []
    for name, text, kind in CANONICAL_INPUTS:
        value = parse(text)
        out.append({"name": name, "input": text, "canonical_hex": canonical(value).hex(),
                    "kind": kind, "digest_hex": digest(kind, value).hex()})
    return out


def _bank_of_alice_and_bob(path: Path, keys: dict[str, SigningKey], until: int
                           ) -> tuple[Ledger, SignedEntry, SignedEntry]:
    """The bank at ``path`` on a clock ticking 100 ms a call from T0 (to ``until``), its own
    chain and alice's and bob's registered: the ledger and their genesis entries."""
    clock = iter(range(T0, until, 100))
    ledger = Ledger(Store(path), BankIdentity(keys["bank"], BANK), clock=lambda: next(clock))
    ledger.register(register_request(keys["bank"], BANK, T0, bank=BANK,
                                     kyc_record={"legal_name": BANK}))
    alice = ledger.register(register_request(keys["alice"], "alice", T0, bank=BANK,
                                             kyc_record={"legal_name": "Alice Example"}))
    bob = ledger.register(register_request(keys["bob"], "bob", T0, bank=BANK, kyc_record=None))
    return ledger, alice, bob


def chain_vector() -> dict[str, Any]:
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        ledger, alice, bob = _bank_of_alice_and_bob(Path(tmp), keys, T0 + 1000)
        ledger.deposit(f"alice*{BANK}", USD, 100000)
        ledger.submit(sign_intent(keys["alice"], "payment", alice.id, 1, T0 + 500,
                                  {"to": bob.id, "to_validator": BANK, "asset": USD,
                                   "amount": "1050", "memo": "rent"}))
        with ledger.store.read() as r:
            entries = [parse(e) for e in r.entries(alice.id, 0, 10)]
        ledger.store.close()
    return {"validator_name": BANK, "validator_key": keys["bank"].public_key,
            "seeds": SEEDS, "chain": alice.id, "entries": entries,
            "entry_ids": [SignedEntry.from_dict(e).id for e in entries]}


def fills_vector() -> dict[str, Any]:
    """A partial take and its fill (docs/adr/0007-partial-fills.md), between two customers of
    one bank: alice offers 100 USD for 90 EUR in parts of at least 10; bob takes 30 of it,
    paying the price of 30, ceil(30 * 90 / 100) = 27. Bob's take, alice's fill (which keeps 70
    of her offer held) and bob's settle, and both chains whole."""
    return _alice_offers_bob_takes_30({}, "27")


def bids_vector() -> dict[str, Any]:
    """A bid on an offer with a selection window (docs/adr/0009-best-taker.md), between two
    customers of one bank: the offer above, ranking the takes of its first second; bob bids 33
    for 30 (the price is 27). His take waits with its hold open; when the window closes the
    bank's clock decides: alice's fill brings her the 33 bob gave, and bob's settle."""
    return _alice_offers_bob_takes_30({"window": 1000}, "33")


def _alice_offers_bob_takes_30(terms: dict[str, Any], gives: str) -> dict[str, Any]:
    """Alice's offer of 100 USD for 90 EUR in parts of 10 (and ``terms``), and bob's take of
    30 of it giving ``gives`` EUR, at one bank; the bank's clock ticks until the take is
    decided (at once without a window)."""
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}
    eur = f"{BANK}:EUR"
    with tempfile.TemporaryDirectory() as tmp:
        ledger, alice, bob = _bank_of_alice_and_bob(Path(tmp), keys, T0 + 60_000)
        ledger.deposit(f"alice*{BANK}", USD, 1000)
        ledger.deposit(f"bob*{BANK}", eur, 1000)
        offer = ledger.submit(sign_intent(keys["alice"], "offer", alice.id, 1, T0 + 700, {
            "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": eur, "amount": "90"},
            "expires": T0 + 3_600_000, "min_fill": "10", **terms})).entries[0]
        taken = ledger.submit(sign_intent(keys["bob"], "take", bob.id, 1, T0 + 800, {
            "offer": offer.id, "validator": BANK, "sell": {"asset": eur, "amount": gives},
            "buy": {"asset": USD, "amount": "30"}}))
        deadlines = Interbank(ledger)
        while len(taken.entries) == 1 and not any("fill" in x for x in deadlines.tick()):
            pass  # waiting for the window: each tick reads the clock, 100 ms on
        with ledger.store.read() as r:
            chains = {name: [parse(e) for e in r.entries(c.id, 0, 10)]
                      for name, c in (("alice", alice), ("bob", bob))}
        ledger.store.close()
    ids = {n: [SignedEntry.from_dict(e).id for e in es] for n, es in chains.items()}
    return {"validator_name": BANK, "validator_key": keys["bank"].public_key, "seeds": SEEDS,
            "chains": {"alice": alice.id, "bob": bob.id}, "entries": chains,
            "entry_ids": ids, "offer": ids["alice"][-2], "take": ids["bob"][-2],
            "fill": ids["alice"][-1]}


LOCK_PREIMAGE = "07" * 32  # the secret of the lock vector: a fixed one, never a real one


def locks_vector() -> dict[str, Any]:
    """A hash-time lock and its claim (docs/adr/0008-hash-time-locks.md), between two
    customers of one bank: alice locks 300 USD for bob under the hash of LOCK_PREIMAGE until
    an hour after T0; bob claims it with the preimage. Alice's lock and settle, bob's claim
    (the lock its evidence, the preimage in his signed intent), and both chains whole."""
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        ledger, alice, bob = _bank_of_alice_and_bob(Path(tmp), keys, T0 + 10_000)
        ledger.deposit(f"alice*{BANK}", USD, 1000)
        lock = ledger.submit(sign_intent(keys["alice"], "lock", alice.id, 1, T0 + 600, {
            "to": bob.id, "asset": USD, "amount": "300", "hash": hash_of(LOCK_PREIMAGE),
            "expires": T0 + 3_600_000})).entries[0]
        ledger.submit(sign_intent(keys["bob"], "claim", bob.id, 1, T0 + 700, {
            "lock": lock.id, "preimage": LOCK_PREIMAGE}))
        with ledger.store.read() as r:
            chains = {name: [parse(e) for e in r.entries(c.id, 0, 10)]
                      for name, c in (("alice", alice), ("bob", bob))}
        ledger.store.close()
    return {"validator_name": BANK, "validator_key": keys["bank"].public_key, "seeds": SEEDS,
            "preimage": LOCK_PREIMAGE, "hash": hash_of(LOCK_PREIMAGE),
            "chains": {"alice": alice.id, "bob": bob.id}, "entries": chains,
            "entry_ids": {n: [SignedEntry.from_dict(e).id for e in es]
                          for n, es in chains.items()},
            "lock": lock.id, "claim": SignedEntry.from_dict(chains["bob"][-1]).id,
            "settle": SignedEntry.from_dict(chains["alice"][-1]).id}
def plans_vector() -> dict[str, Any]:
    """An execution plan (docs/protocol.md §14): alice at bank1 proposes a DvP with bob at
    bank2 (1000 bank1 USD for 10 bank2 BOND, bank3 watching); its document and digest, bank1's
    proposal, alice's consent to her hold, bank1's approval, and, once the plan runs, alice's
    plan entry that holds the 1000 with her consent (her chain whole)."""
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}
    bank2 = SigningKey(bytes.fromhex("04" * 32))
    with tempfile.TemporaryDirectory() as tmp:
        ledger, alice, _ = _bank_of_alice_and_bob(Path(tmp), keys, T0 + 10_000)
        ledger.deposit(f"alice*{BANK}", USD, 5000)
        document = plan_document(PLAN_FILE, plan_id_=plan_id(BANK, PLAN_UUID),
                                 proposer=f"alice*{BANK}", time=T0 + 400)
        plan = Plan.from_dict(document)
        proposal = sign_log(keys["bank"], "proposal", plan=plan.id, plan_digest=plan.digest,
                            by=BANK, time=T0 + 400, document=plan.doc)
        consent = SignedIntent.from_dict(sign_intent(keys["alice"], "plan", alice.id, 0,
                                                     T0 + 500, consent_body(plan, 1)))
        record = make_record(keys["bank"], address=f"alice*{BANK}",
                             owner=keys["alice"].public_key, chain=alice.id, validator=BANK)
        approval = sign_log(keys["bank"], "approval", plan=plan.id, plan_digest=plan.digest,
                            by=BANK, time=T0 + 600, consents=[consent], records=[record])

        def hold(w: Writer) -> None:
            outcome = hold_for_plan(ledger.bank, w.state(alice.id), consent, T0 + 700)
            w.append(outcome.entries[0], outcome.states[0])

        ledger.store.write(hold)
        with ledger.store.read() as r:
            entries = [parse(e) for e in r.entries(alice.id, 0, 10)]
        ledger.store.close()
    return {"validator_name": BANK, "validator_key": keys["bank"].public_key,
            "bank2_key": bank2.public_key, "seeds": {**SEEDS, "bank2": "04" * 32},
            "plan": plan.doc, "plan_canonical_hex": canonical(plan.doc).hex(),
            "plan_digest": plan.digest, "proposal": proposal.doc, "consent": consent.doc,
            "approval": approval.doc, "approval_id": approval.id, "chain": alice.id,
            "entries": entries, "hold": SignedEntry.from_dict(entries[-1]).id}


PLAN_UUID = uuid.UUID("6f1c2a8e-3b7d-4c21-9a55-0d3e8f7b1c42")
PLAN_FILE = {
    "deadline_in": 600_000,
    "participants": [{"bank": BANK, "role": "contributor"},
                     {"bank": "bank2.example", "role": "contributor"},
                     {"bank": "bank3.example", "role": "observer"}],
    "instructions": [
        {"op": "hold", "account": f"alice*{BANK}", "asset": USD, "amount": "1000"},
        {"op": "hold", "account": "bob*bank2.example", "asset": "bank2.example:BOND",
         "amount": "10"},
        {"op": "transfer", "hold": 1, "to": "bob*bank2.example"},
        {"op": "transfer", "hold": 2, "to": f"alice*{BANK}"}],
}


def write() -> None:
    (HERE / "canonical.json").write_text(json.dumps(canonical_vectors(), indent=2,
                                                    ensure_ascii=False) + "\n")
    (HERE / "chain.json").write_text(json.dumps(chain_vector(), indent=2) + "\n")
    (HERE / "fills.json").write_text(json.dumps(fills_vector(), indent=2) + "\n")
    (HERE / "bids.json").write_text(json.dumps(bids_vector(), indent=2) + "\n")
    (HERE / "locks.json").write_text(json.dumps(locks_vector(), indent=2) + "\n")
    (HERE / "plans.json").write_text(json.dumps(plans_vector(), indent=2) + "\n")
    from tests.vectors.plan_local import plan_local_vector  # it builds on this module
    (HERE / "plan_local.json").write_text(json.dumps(plan_local_vector(), indent=2) + "\n")
    from tests.vectors.plan_local import plan_confirmation_vector
    (HERE / "plan_confirmation.json").write_text(
        json.dumps(plan_confirmation_vector(), indent=2) + "\n")
    from tests.vectors.plan_equivocation import plan_equivocation_vector
    (HERE / "plan_equivocation.json").write_text(
        json.dumps(plan_equivocation_vector(), indent=2) + "\n")
    from tests.vectors.routes import (  # three banks in a line (ADR 0015)
        route_unpaid_vector,
        routes_vector,
    )
    (HERE / "routes.json").write_text(json.dumps(routes_vector(), indent=2) + "\n")
    (HERE / "route_unpaid.json").write_text(json.dumps(route_unpaid_vector(), indent=2) + "\n")
    from tests.vectors.take_contradiction import take_contradiction_vector
    (HERE / "take_contradiction.json").write_text(
        json.dumps(take_contradiction_vector(), indent=2) + "\n")


if __name__ == "__main__":
    write()
