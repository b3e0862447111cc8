"""Execution plans between in-process banks (validator.plans): proposing, consents, approvals
and the log every participant keeps, with the peers' lies refused. Nothing moves before every
contributor approved, and approving moves nothing either: no hold, every sum unchanged."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import root
from tchain.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    SignatureError,
    VerificationError,
)
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import Effect, SignedEntry, SignedIntent
from tchain.plans import Execution, LogDoc, consent_body, consents_of, sign_log
from tchain.plans.receipts import check_receipts
from tchain.proofs import verify_proof
from tchain.records import make_record
from tchain.verify import verify_chain
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, pin, totals
from validator.audit import audit
from validator.plans import Plans

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"


@pytest.fixture
def net(tmp_path: Path) -> tuple[Net, dict[str, NetBank], dict[str, Customer]]:
    clock = Clock()
    return three_banks(tmp_path, lambda: clock)


def three_banks(tmp_path: Path, clock: Callable[[], Clock]
                ) -> tuple[Net, dict[str, NetBank], dict[str, Customer]]:
    """Banks 1, 2 and 3 pinned to each other (each on ``clock()``), alice at bank1 with 5000
    USD, bob at bank2 with 50 BOND."""
    banks = {n: NetBank(tmp_path / n, n, clock()) for n in (B1, B2, B3)}
    for a, b in ((B1, B2), (B1, B3), (B2, B3)):
        pin(banks[a], banks[b])
    people = {"alice": banks[B1].join("alice"), "bob": banks[B2].join("bob")}
    banks[B1].deposit(people["alice"], 5000)
    banks[B2].deposit(people["bob"], 50, "BOND")
    return Net(*banks.values()), banks, people


def dvp(**changes: Any) -> dict[str, Any]:
    return {"deadline_in": 600_000,
            "participants": [{"bank": B1, "role": "contributor"},
                             {"bank": B2, "role": "contributor"},
                             {"bank": B3, "role": "observer"}],
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "1000"},
                {"op": "hold", "account": f"bob*{B2}", "asset": f"{B2}:BOND", "amount": "10"},
                {"op": "transfer", "hold": 1, "to": f"bob*{B2}"},
                {"op": "transfer", "hold": 2, "to": f"alice*{B1}"}],
            **changes}


def consent(bank: NetBank, who: Customer, plan: str, *,
            key: SigningKey | None = None) -> dict[str, Any]:
    """``who``'s signed consents to their holds in ``plan`` (by ``key``: a forger's)."""
    with bank.ledger.store.read() as r:
        ex = Plans(bank.ledger).execution(r, plan)
    return {"consents": [sign_intent(key or who.key, "plan", who.chain, 0, bank.ledger.clock(),
                                     body)
                         for _, body in consents_of(ex.plan, f"{who.name}*{bank.name}")]}


def state(bank: NetBank, plan: str) -> Execution:
    with bank.ledger.store.read() as r:
        return Plans(bank.ledger).execution(r, plan)


def sound(banks: dict[str, NetBank]) -> None:
    """Every chain verifies (the audit feeds each to the verifier), every asset sums to zero
    over all banks, no hold is open, each audit is clean."""
    assert all(t == 0 for t in totals(*banks.values()).values()), totals(*banks.values())
    for bank in banks.values():
        with bank.ledger.store.read() as r:
            assert r.open_holds() == []
        report = audit(bank.ledger)
        assert report.ok, report.problems


def alice_signed(network: Net, banks: dict[str, NetBank], people: dict[str, Customer],
                 file: dict[str, Any] | None = None) -> str:
    """``file`` (the DvP) proposed and signed by alice, bank1 approving: the plan id."""
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file or dvp())
    network.run()
    Plans(banks[B1].ledger).consent(ex.plan.id, consent(banks[B1], people["alice"], ex.plan.id))
    network.run()
    return ex.plan.id


def bob_signs(banks: dict[str, NetBank], people: dict[str, Customer], plan: str) -> list[str]:
    """Bob signs at bank2, which approves: the ids of the messages it queued."""
    return Plans(banks[B2].ledger).consent(plan, consent(banks[B2], people["bob"], plan))[1]


def turn_at(network: Net, banks: dict[str, NetBank], people: dict[str, Customer],
             down: str) -> str:
    """A DvP signed by both, run until bank ``down`` (taken down once approvals are out)
    would do its hold: the plan id."""
    plan = alice_signed(network, banks, people)
    sent = bob_signs(banks, people, plan)
    for message in sent:
        network.deliver(banks[B2], message)
    banks[down].up = False
    network.run(50)
    return plan


def signed(network: Net, banks: dict[str, NetBank], people: dict[str, Customer],
           file: dict[str, Any], *who: tuple[str, str]) -> str:
    """``file`` proposed by alice, then signed by each (customer, bank) in ``who``."""
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    network.run()
    for name, bank in who:
        Plans(banks[bank].ledger).consent(ex.plan.id, consent(banks[bank], people[name],
                                                               ex.plan.id))
        network.run(50)
    return ex.plan.id


def test_a_dvp_runs_to_completion_once_both_customers_sign(net):
    network, banks, people = net
    plan = ex_id = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, dvp())[0]
    network.run()
    plan = ex_id.plan.id
    assert [state(b, plan).state for b in banks.values()] == ["proposed"] * 3
    Plans(banks[B1].ledger).consent(plan, consent(banks[B1], people["alice"], plan))
    network.run()
    assert state(banks[B3], plan).approvals.keys() == {B1}
    with banks[B1].ledger.store.read() as r:  # nothing held before every approval
        assert r.open_holds() == []
    Plans(banks[B2].ledger).consent(plan, consent(banks[B2], people["bob"], plan))
    network.run(50)
    for bank in banks.values():
        ex = state(bank, plan)
        assert ex.state == "completed", (bank.name, ex.to_dict()["instructions"])
    logs = [{d.id for d in state(b, plan).docs} for b in banks.values()]
    assert logs[0] == logs[1] == logs[2]
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (4000, 0)
    assert banks[B1].balance(people["alice"], f"{B2}:BOND") == (10, 0)
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (1000, 0)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (40, 0)
    sound(banks)


def test_a_plan_naming_a_customer_a_bank_does_not_have_is_rejected_everywhere(net):
    network, banks, people = net
    file = dvp()
    file["instructions"][1]["account"] = f"carol*{B2}"
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    network.run()
    for bank in banks.values():
        assert state(bank, ex.plan.id).state == "failed"
        assert state(bank, ex.plan.id).rejection.body["error"] == "unknown_chain"


def test_only_a_customer_of_a_contributing_bank_proposes(net):
    _, banks, people = net
    with pytest.raises(ForbiddenError, match="owns no chain"):
        Plans(banks[B1].ledger).propose(people["bob"].key.public_key, dvp())
    with pytest.raises(BadRequestError, match="proposer's bank"):
        Plans(banks[B2].ledger).propose(people["bob"].key.public_key, dvp(participants=[
            {"bank": B1, "role": "contributor"}, {"bank": B2, "role": "observer"}]))


def test_a_consent_signed_by_anyone_but_the_chains_owner_or_for_someone_else_is_refused(net):
    network, banks, people = net
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, dvp())
    network.run()
    plan = ex.plan.id
    forged = consent(banks[B1], people["alice"], plan, key=SigningKey.generate())
    with pytest.raises(SignatureError):
        Plans(banks[B1].ledger).consent(plan, forged)
    with pytest.raises(BadRequestError, match="not to a hold of plan"):  # bob's, at bank1
        Plans(banks[B1].ledger).consent(plan, consent(banks[B2], people["bob"], plan))
    other = f"{B1}/106/00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFoundError):
        Plans(banks[B1].ledger).consent(other, consent(banks[B1], people["alice"], plan))
    assert state(banks[B1], plan).state == "proposed"


def _lie(network: Net, liar: NetBank, to: NetBank, log: list[dict[str, Any]]) -> bytes:
    message = sign_message(liar.key, "plan", liar.name, to.name, liar.ledger.clock(), log=log)
    return to.interbank.receive(message, liar.key.public_key)


def test_a_peer_that_approves_for_another_bank_or_forges_a_consent_is_refused(net):
    network, banks, people = net
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, dvp())
    network.run()
    plan, b2 = ex.plan, banks[B2]
    proposal = state(b2, plan.id).docs[0]
    # bank2 signs an approval in bank1's name, with a consent and a record it made up
    fake = SigningKey.generate()
    records = [make_record(b2.key, address=f"alice*{B1}", owner=fake.public_key,
                           chain=people["alice"].chain, validator=B1)]
    consents = [sign_intent(fake, "plan", people["alice"].chain, 0, 0, consent_body(plan, 1))]
    lie = sign_log(b2.key, "approval", plan=plan.id, plan_digest=plan.digest, by=B2, time=0,
                   consents=consents, records=records)
    refused = _lie(network, b2, banks[B3], [proposal.doc, _as_bank(lie, B1)])
    assert b'"refused"' in refused and b"bad_signature" in refused
    # bank2 approves itself with a consent bob never signed, under its true record of bob
    own = sign_log(b2.key, "approval", plan=plan.id, plan_digest=plan.digest, by=B2, time=0,
                   consents=[sign_intent(fake, "plan", people["bob"].chain, 0, 0,
                                         consent_body(plan, 2))],
                   records=[_record(b2, people["bob"]), _record(banks[B2], people["bob"],
                                                                address=f"alice*{B1}")][:1])
    refused = _lie(network, b2, banks[B3], [proposal.doc, own.doc])
    assert b'"refused"' in refused and b"bad_signature" in refused
    assert state(banks[B3], plan.id).docs == (proposal,)


def _as_bank(doc: LogDoc, bank: str) -> dict[str, Any]:
    lie = copy.deepcopy(doc.doc)
    lie["log"]["by"] = bank
    return lie


def _record(bank: NetBank, who: Customer, address: str | None = None) -> dict[str, Any]:
    return make_record(bank.key, address=address or f"{who.name}*{bank.name}",
                       owner=who.key.public_key, chain=who.chain, validator=bank.name)


def test_a_plan_log_from_a_bank_it_does_not_name_is_refused(net, tmp_path):
    network, banks, people = net
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, dvp(participants=[
        {"bank": B1, "role": "contributor"}, {"bank": B2, "role": "contributor"}]))
    network.run()
    proposal = state(banks[B1], ex.plan.id).docs[0]
    refused = _lie(network, banks[B3], banks[B2], [proposal.doc])
    assert b'"refused"' in refused and b"forbidden" in refused


def every_state(banks: dict[str, NetBank], plan: str) -> set[str]:
    return {state(bank, plan).state for bank in banks.values()}


def test_a_payer_short_of_funds_compensates_and_the_other_hold_is_released(net):
    network, banks, people = net
    file = dvp()
    file["instructions"][1]["amount"] = "60"  # bob has 50 BOND
    plan = signed(network, banks, people, file, ("alice", B1), ("bob", B2))
    assert every_state(banks, plan) == {"compensated"}
    ex = state(banks[B3], plan)
    assert ex.instructions[2].completion.body["error"] == "insufficient_funds"
    assert ex.compensations.keys() == {B1}  # the one bank that held: alice's hold released
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 0)
    sound(banks)


def test_a_bank_down_past_the_deadline_refuses_the_hold_it_missed_and_all_is_released(net):
    network, banks, people = net
    clock = banks[B1].ledger.clock
    plan = turn_at(network, banks, people, down=B2)  # bank2 down once its approval is out
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 1000)  # held, waiting
    clock.now += 700_000  # past the deadline: bank1 does not release on its clock alone
    network.run(50)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 1000)
    banks[B2].up = True  # back: its first word on alice's hold is that it came too late
    network.run(50)
    assert every_state(banks, plan) == {"compensated"}
    assert state(banks[B1], plan).instructions[1].rejections == {B2}
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    sound(banks)


def test_the_bank_whose_turn_it_is_down_past_the_deadline_is_refused_by_the_others(net):
    network, banks, people = net
    clock = banks[B1].ledger.clock
    plan = alice_signed(network, banks, people)
    banks[B1].up = False
    bob_signs(banks, people, plan)
    network.run(50)
    assert state(banks[B2], plan).state == "approved"
    clock.now += 700_000
    network.run(50)
    assert state(banks[B2], plan).state == "compensated"  # nothing was held
    banks[B1].up = True
    network.run(50)
    assert every_state(banks, plan) == {"compensated"}
    sound(banks)


def test_a_three_way_swap_runs_all_or_nothing(net, tmp_path):
    network, banks, people = net
    people["carol"] = banks[B3].join("carol")
    banks[B3].deposit(people["carol"], 700, "GBP")
    swap = {"deadline_in": 600_000,
            "participants": [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)],
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "100"},
                {"op": "hold", "account": f"bob*{B2}", "asset": f"{B2}:BOND", "amount": "1"},
                {"op": "hold", "account": f"carol*{B3}", "asset": f"{B3}:GBP", "amount": "70"},
                {"op": "transfer", "hold": 1, "to": f"bob*{B2}"},
                {"op": "transfer", "hold": 2, "to": f"carol*{B3}"},
                {"op": "transfer", "hold": 3, "to": f"alice*{B1}"}]}
    who = (("alice", B1), ("bob", B2), ("carol", B3))
    plan = signed(network, banks, people, swap, *who)
    assert every_state(banks, plan) == {"completed"}
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (70, 0)
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (100, 0)
    assert banks[B3].balance(people["carol"], f"{B2}:BOND") == (1, 0)
    sound(banks)
    swap["instructions"][2]["amount"] = "1000"  # carol has 630 left: nothing moves at all
    plan = signed(network, banks, people, swap, *who)
    assert every_state(banks, plan) == {"compensated"}
    assert state(banks[B1], plan).compensations.keys() == {B1, B2}
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (4900, 0)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (49, 0)
    sound(banks)


def test_a_repo_is_a_dvp_now_and_the_reverse_dvp_after_an_await(net):
    network, banks, people = net
    clock = banks[B1].ledger.clock
    repo = dvp()
    repo["instructions"] += [
        {"op": "await", "until": clock.now + 3_600_000},
        {"op": "hold", "account": f"alice*{B1}", "asset": f"{B2}:BOND", "amount": "10"},
        {"op": "hold", "account": f"bob*{B2}", "asset": f"{B1}:USD", "amount": "1010"},
        {"op": "transfer", "hold": 6, "to": f"bob*{B2}"},
        {"op": "transfer", "hold": 7, "to": f"alice*{B1}"}]
    banks[B1].submit(people["alice"], "payment", {  # bob's own 10 USD, for the interest
        "to": people["bob"].chain, "to_validator": B2, "asset": f"{B1}:USD", "amount": "10"})
    network.run()
    plan = signed(network, banks, people, repo, ("alice", B1), ("bob", B2))
    assert every_state(banks, plan) == {"executing"}
    assert state(banks[B1], plan).turn().op == "await"
    assert banks[B1].balance(people["alice"], f"{B2}:BOND") == (10, 0)  # the first leg
    clock.now += 3_600_000
    network.run(50)
    assert every_state(banks, plan) == {"completed"}, every_state(banks, plan)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)  # 10 paid, 10 back
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 0)
    sound(banks)


# --- what a lying peer or a forging bank tries ------------------------------------------------

def test_a_completion_whose_receipt_does_not_do_the_instruction_is_refused(net):
    network, banks, people = net
    plan = turn_at(network, banks, people, down=B2)  # alice's hold waits on bank2's word
    b2, ex = banks[B2], state(banks[B1], plan)
    approve = sign_log(b2.key, "completion_approval", plan=plan, plan_digest=ex.plan.digest,
                       by=B2, time=0, seq=1, completion=ex.instructions[1].completion.id)
    ex = ex.append(approve)
    assert ex.turn().seq == 2  # bob's hold, bank2's to do
    consent_2 = ex.consents[2]
    bob = b2.ledger.state(people["bob"].chain)

    def hold_entry(amount: str) -> SignedEntry:
        return SignedEntry.sign(b2.key, chain=bob.chain, height=bob.height + 1, prev=bob.head,
                                time=0, kind="plan", intent=consent_2,
                                effects=(Effect(f"{B2}:BOND", 0, int(amount)),), evidence=())

    def completion(*receipts: SignedEntry) -> LogDoc:
        return sign_log(b2.key, "completion", plan=plan, plan_digest=ex.plan.digest, by=B2,
                        time=0, seq=2, status="done", receipts=list(receipts), error=None)

    log = [d.doc for d in ex.docs]
    refused = _lie(network, b2, banks[B1], [*log, completion(hold_entry("1")).doc])
    assert b'"refused"' in refused and b"holds 10" in refused  # a hold of 1 BOND, not 10
    other = Customer("mallory", chain=people["alice"].chain)
    forged = sign_log(b2.key, "completion", plan=plan, plan_digest=ex.plan.digest, by=B2,
                      time=0, seq=2, status="done", error=None, receipts=[
                          SignedEntry.sign(b2.key, chain=other.chain, height=9, prev="00" * 32,
                                           time=0, kind="plan", intent=consent_2,
                                           effects=(Effect(f"{B2}:BOND", 0, 10),),
                                           evidence=())])
    refused = _lie(network, b2, banks[B1], [*log, forged.doc])  # on another chain
    assert b'"refused"' in refused
    assert state(banks[B1], plan).instructions[2].completion is None
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 1000)


def test_a_transfer_completion_with_a_credit_the_payee_bank_did_not_sign_is_refused(net):
    network, banks, people = net
    plan = turn_at(network, banks, people, down=B2)  # bank2 down: alice's hold waits
    banks[B2].up = True
    network.run(50)
    b1 = banks[B1]
    ex = state(b1, plan)
    assert ex.state == "completed"
    # bank1 claims (again, in a new log) a settle of alice's hold by a credit it signed itself
    real = ex.instructions[3].completion.receipts()[0]
    hold = ex.hold_entry(1)
    fake_credit = SignedEntry.sign(b1.key, chain=ex.chains[f"bob*{B2}"], height=5,
                                   prev="00" * 32, time=0, kind="credit", intent=None,
                                   effects=(Effect(f"{B1}:USD", 1000, 0),), evidence=(hold,))
    fake_settle = SignedEntry.sign(b1.key, chain=real.chain, height=real.height, prev=real.prev,
                                   time=0, kind="settle", intent=None, effects=real.effects,
                                   evidence=(fake_credit,))
    with pytest.raises(SignatureError, match="credit of transfer 3 is not signed by bank2"):
        check_receipts(ex.plan.instruction(3), "done", (fake_settle,), 0, ex._checks())


def test_every_chain_of_a_plan_verifies_offline_and_forged_plan_entries_do_not(net):
    network, banks, people = net
    plan = signed(network, banks, people, dvp(), ("alice", B1), ("bob", B2))
    b1 = banks[B1]
    ex = state(b1, plan)
    with b1.ledger.store.read() as r:
        alice = [SignedEntry.from_bytes(e) for e in r.entries(people["alice"].chain, 0, 100)]
    verify_chain(alice, b1.key.public_key, B1, people["alice"].chain)
    head = alice[-1]

    def forged(kind: str, intent: SignedIntent | None, effects: tuple[Effect, ...],
               evidence: tuple[SignedEntry, ...] = ()) -> list[SignedEntry]:
        return [*alice, SignedEntry.sign(b1.key, chain=head.chain, height=head.height + 1,
                                         prev=head.id, time=head.time, kind=kind,
                                         intent=intent, effects=effects, evidence=evidence)]

    # the same consent held twice: alice agreed to hold 1000 once
    with pytest.raises(VerificationError, match="held already"):
        verify_chain(forged("plan", ex.consents[1], (Effect(f"{B1}:USD", 0, 1000),)),
                     b1.key.public_key, B1, people["alice"].chain)
    # a consent alice never signed
    fake = SignedIntent.from_dict(sign_intent(SigningKey.generate(), "plan",
                                              people["alice"].chain, 0, 0,
                                              consent_body(ex.plan, 1)))
    with pytest.raises(VerificationError, match="does not verify"):
        verify_chain(forged("plan", fake, (Effect(f"{B1}:USD", 0, 1000),)),
                     b1.key.public_key, B1, people["alice"].chain)
    # a credit to alice of bob's hold, which pays alice... only the BOND it held for her
    bob_hold = ex.hold_entry(2)
    with pytest.raises(VerificationError, match="already credited"):
        verify_chain(forged("credit", None, (Effect(f"{B2}:BOND", 10, 0),), (bob_hold,)),
                     b1.key.public_key, B1, people["alice"].chain)
    with pytest.raises(VerificationError, match=r"pays bob\*bank2"):  # alice's hold, to her
        verify_chain(forged("credit", None, (Effect(f"{B1}:USD", 1000, 0),),
                            (ex.hold_entry(1),)), b1.key.public_key, B1, people["alice"].chain)


def test_a_bank_that_does_not_pay_once_every_hold_stands_leaves_a_proof(net, tmp_path):
    network, banks, people = net
    b1, b2 = banks[B1], banks[B2]
    plan = alice_signed(network, banks, people)
    bob_signs(banks, people, plan)
    # deliver until bank2 has logged its hold, then bank1 goes silent with its transfer due
    for _ in range(20):
        with b2.ledger.store.read() as r:
            queued = [m for m, _ in r.records("outbox")]
        if state(b2, plan).instructions[2].completion is not None:
            break
        for bank in (b1, b2):
            with bank.ledger.store.read() as r:
                for m, _ in r.records("outbox"):
                    network.deliver(bank, m)
    for m in queued:
        network.deliver(b2, m)  # bank1 gets bob's hold, approves it: its transfer is due
    assert state(b1, plan).turn().seq == 3
    with b1.ledger.store.read() as r:  # its approval goes out; its transfer never does
        words = [m for m, item in r.records("outbox")
                 if item["message"]["message"]["type"] == "plan"]
    for m in words:
        network.deliver(b1, m)
    assert state(b2, plan).turn().seq == 3
    b1.up = False
    b1.ledger.clock.now += 700_000
    network.run(50)
    at2 = state(b2, plan)
    assert at2.state == "failed" and at2.instructions[3].rejections == {B2}
    assert b2.balance(people["bob"], f"{B2}:BOND") == (50, 0)  # bob's hold released
    [proof] = b2.interbank.proofs()
    summary = verify_proof(proof)
    assert summary.type == "plan_default" and summary.culprit == b1.key.public_key
    assert "did not do instruction 3 (transfer)" in summary.summary
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(proof))
    shown = CliRunner().invoke(root, ["proof", "verify", str(path)])
    assert shown.exit_code == 0 and "did not do instruction 3" in shown.output
    lie = copy.deepcopy(proof)
    lie["log"] = lie["log"][:-1]  # without the reporter's word: nothing shows it was late
    with pytest.raises(VerificationError):
        verify_proof(lie)
    b1.up = True  # back past its due without bank2's confirmation (it was down), bank1,
    network.run(50)  # the transfer's decider, aborts it: alice's hold released (docs/adr/0014)
    assert {state(b, plan).state for b in banks.values()} == {"compensated"}
    assert b1.balance(people["alice"], f"{B1}:USD") == (5000, 0)
    sound(banks)


def test_a_plan_that_would_move_a_third_banks_iou_is_rejected_not_sent(net):
    network, banks, people = net
    carol = banks[B3].join("carol")
    banks[B3].deposit(carol, 700, "GBP")
    banks[B3].submit(carol, "payment", {"to": people["alice"].chain, "to_validator": B1,
                                        "asset": f"{B3}:GBP", "amount": "70"})
    network.run()
    file = dvp()
    file["instructions"][0].update(asset=f"{B3}:GBP", amount="70")  # bank3's IOU to bank2
    plan = signed(network, banks, people, file, ("alice", B1), ("bob", B2))
    assert every_state(banks, plan) == {"failed"}
    assert state(banks[B2], plan).rejection.body["error"] == "foreign_asset"
    assert banks[B2].interbank.proofs() == []  # bank1 was never made to look like a cheat
    sound(banks)
