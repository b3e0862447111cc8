"""Execution plans against a lying peer: bank 2's real key, in the test's hands, signs plan
holds an honest bank 2 would never send for credit (a consent its customer did not sign, a
hold of more than the consent, a consent paying someone else, a consent with a seq) and plan
logs with approvals and consents it made up. Bank 1 must credit nothing, refuse with the
code, keep a misconduct proof where the message alone shows the lie, and keep its books (the
``liar`` fixture checks them and the audit after each)."""

from __future__ import annotations

import uuid
from typing import Any

from tchain.clock import now_ms
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import Message
from tchain.plans import Plan, consent_body, plan_document, plan_id, sign_log
from tchain.proofs import verify_proof
from tests.hostile.conftest import B1, B2
from tests.realbanks import read, register, snapshot_from
from validator.plans import plan_key

EUR2 = f"{B2}:EUR"


def plan_hold(liar: Any, payee: str, *, amount: int = 10, held: int | None = None,
              seq: int = 0, signer: SigningKey | None = None) -> tuple[Any, dict[str, Any]]:
    """A plan hold of a customer bank 2 makes up, consenting to pay ``payee`` (an address)
    ``amount`` of bank 2's EUR, and its key record (``signer`` signs the consent instead)."""
    owner, chain = SigningKey.generate(), SigningKey.generate().public_key
    body = {"plan": f"{B2}/106/{uuid.uuid4()}", "digest": "ab" * 32, "hold": 1,
            "asset": EUR2, "amount": str(amount), "to": payee}
    consent = sign_intent(signer or owner, "plan", chain, seq, now_ms(), body)
    hold = liar.entry(chain=chain, kind="plan", intent=consent, effects=[
        {"asset": EUR2, "balance": "0", "held": str(amount if held is None else held)}])
    return hold, liar.record(chain, owner.public_key)


def refused(liar: Any, message: dict[str, Any], code: str) -> dict[str, Any]:
    before = read(liar.target, snapshot_from)
    answer = liar.answer_of(message)
    assert answer["type"] == "refused" and answer["error"] == code, answer
    assert read(liar.target, snapshot_from) == before  # nothing credited, nothing changed
    return answer


def test_a_plan_hold_whose_consent_the_customer_did_not_sign_is_misconduct(liar):
    alice = register(liar.target, "alice-p1")
    hold, record = plan_hold(liar, f"alice-p1*{B1}", signer=SigningKey.generate())
    message = liar.transfer(hold, record)
    refused(liar, message, "bad_signature")
    proof = read(liar.target, lambda r: r.record("proofs", Message.from_dict(message).id))
    assert verify_proof(proof).culprit == liar.key.public_key
    assert alice.chain


def test_a_plan_hold_of_more_than_its_consent_is_misconduct(liar):
    register(liar.target, "alice-p2")
    hold, record = plan_hold(liar, f"alice-p2*{B1}", amount=10, held=1000)
    refused(liar, liar.transfer(hold, record), "bad_request")


def test_a_plan_hold_that_pays_someone_else_is_credited_to_no_one(liar):
    register(liar.target, "alice-p3")
    hold, record = plan_hold(liar, "carol*bank9.example")
    refused(liar, liar.transfer(hold, record), "unknown_chain")
    hold, record = plan_hold(liar, f"nobody*{B1}")
    refused(liar, liar.transfer(hold, record), "unknown_chain")


def test_a_plan_hold_whose_consent_has_a_seq_cannot_stand_in_a_chain(liar):
    register(liar.target, "alice-p4")
    hold, record = plan_hold(liar, f"alice-p4*{B1}", seq=1)
    refused(liar, liar.transfer(hold, record), "bad_request")


def test_a_plan_log_with_a_consent_bank1s_customer_never_signed_is_refused(liar):
    alice = register(liar.target, "alice-p5")
    plan = _mallorys_plan("alice-p5", now_ms(), now_ms() + 600_000)
    proposal = sign_log(liar.key, "proposal", plan=plan.id, plan_digest=plan.digest, by=B2,
                        time=now_ms(), document=plan.doc)
    ack = liar.answer_of(liar.sign("plan", log=[proposal.doc]))
    assert ack["type"] == "ack"  # a proposal is kept: nothing moves without alice's consent
    # bank 2 approves in bank 1's name, with alice's consent made up and its own record of her
    fake = SigningKey.generate()
    lie = sign_log(liar.key, "approval", plan=plan.id, plan_digest=plan.digest, by=B2,
                   time=now_ms(),
                   consents=[sign_intent(fake, "plan", alice.chain, 0, now_ms(),
                                         consent_body(plan, 1))],
                   records=[liar.record(alice.chain, fake.public_key, "alice-p5")])
    forged = dict(lie.doc, log={**lie.doc["log"], "by": B1})
    refused(liar, liar.sign("plan", log=[proposal.doc, forged]), "bad_signature")
    kept = read(liar.target, lambda r: r.record("plans", plan_key(plan.id)))
    assert [d["log"]["type"] for d in kept["log"]] == ["proposal"]
    assert read(liar.target, lambda r: r.open_holds()) == []


def test_a_plan_hold_of_a_plan_bank1_never_approved_is_credited_to_no_one(liar):
    """Bank 2 moves a hold its customer consented to, for a plan bank 1 never saw, let alone
    approved (docs/adr/0011): the payee bank credits a plan's transfer only when its own log
    shows it due. Only that log shows the lie, so no proof: a refusal, nothing credited."""
    register(liar.target, "alice-p6")
    hold, record = plan_hold(liar, f"alice-p6*{B1}")
    answer = refused(liar, liar.transfer(hold, record), "conflict")
    assert "is not known" in answer["reason"]


def _mallorys_plan(customer: str, time: int, deadline: int) -> Plan:
    """Bank 2's plan: ``customer`` at bank 1 pays mallory at bank 2 100 USD."""
    file = {"deadline": deadline,
            "participants": [{"bank": B2, "role": "contributor"},
                             {"bank": B1, "role": "contributor"}],
            "instructions": [
                {"op": "hold", "account": f"{customer}*{B1}", "asset": f"{B1}:USD",
                 "amount": "100"},
                {"op": "transfer", "hold": 1, "to": f"mallory*{B2}"}]}
    return Plan.from_dict(plan_document(file, plan_id_=plan_id(B2), proposer=f"mallory*{B2}",
                                        time=time, confirm=True))


def test_a_plan_dated_long_ago_or_due_never_and_a_malformed_plan_log_are_refused(liar):
    """The outside attacker's a7/a10/a28 (docs/adr/0012), over HTTP: a proposal dated a day
    ago, or with a deadline of 2^53-1 (every irreversible step's due as long: no default ever
    provable), is refused and not kept; a log that does not parse is a plain 400, not kept."""
    register(liar.target, "alice-p7")
    now = now_ms()
    for time, deadline, code in ((now - 86_400_000, now + 60_000, "stale_time"),
                                 (now, 2**53 - 1, "bad_request")):
        plan = _mallorys_plan("alice-p7", time, deadline)
        proposal = sign_log(liar.key, "proposal", plan=plan.id, plan_digest=plan.digest,
                            by=B2, time=time, document=plan.doc)
        refused(liar, liar.sign("plan", log=[proposal.doc]), code)
        assert read(liar.target, lambda r, p=plan: r.record("plans", plan_key(p.id))) is None
    for log in ([1], [{"log": {}, "sig": "00"}]):
        message = liar.sign("plan", log=log)
        response = liar.post(message)
        assert response.status_code == 400, response.text
        assert read(liar.target, lambda r, m=message: r.answer(Message.from_dict(m).id)) is None


def test_bank2s_rejection_and_approval_of_one_plan_are_proven_not_refused(liar):
    """The tenth tester's move (docs/adr/0014), over HTTP against a real bank: bank 2 rejects
    its own plan, then sends a log with its approval of it. Before, bank 1 refused that log
    whole (`conflict`) and nothing was kept; now both words are kept in the log (the plan
    failed, culprit bank 2, nothing held: docs/adr/0014), and bank 1 keeps a
    plan_equivocation proof against bank 2 that verifies offline. The same log again brings
    nothing new."""
    alice = register(liar.target, "alice-p8")
    plan = _mallorys_plan("alice-p8", now_ms(), now_ms() + 600_000)
    proposal = sign_log(liar.key, "proposal", plan=plan.id, plan_digest=plan.digest, by=B2,
                        time=now_ms(), document=plan.doc)
    no = sign_log(liar.key, "rejection", plan=plan.id, plan_digest=plan.digest, by=B2,
                  time=now_ms(), error="limit_exceeded", reason="not today")
    assert liar.answer_of(liar.sign("plan", log=[proposal.doc, no.doc]))["type"] == "ack"
    yes = sign_log(liar.key, "approval", plan=plan.id, plan_digest=plan.digest, by=B2,
                   time=now_ms(), consents=[],
                   records=[liar.record(SigningKey.generate().public_key,
                                        SigningKey.generate().public_key)])
    assert liar.answer_of(liar.sign("plan", log=[proposal.doc, yes.doc]))["type"] == "ack"
    kept = read(liar.target, lambda r: r.record("plans", plan_key(plan.id)))
    assert [d["log"]["type"] for d in kept["log"]][:2] == ["proposal", "rejection"]
    assert yes.doc in kept["log"]
    [proof] = read(liar.target, lambda r: [p for _, p in r.records("proofs")
                                           if p.get("type") == "plan_equivocation"
                                           and p["log"][0]["log"]["plan"] == plan.id])
    assert verify_proof(proof).culprit == liar.key.public_key
    assert proof["log"][1:] == [no.doc, yes.doc] and proof["seq"] == 0
    assert liar.answer_of(liar.sign("plan", log=[proposal.doc, yes.doc]))["type"] == "ack"
    assert read(liar.target, lambda r: r.record("plans", plan_key(plan.id)))["log"] == \
        kept["log"]
    assert read(liar.target, lambda r: r.open_holds()) == []
    assert alice.chain


def test_a_flood_of_one_approval_dated_999_ways_is_proven_and_never_grows_the_log(liar):
    """The twelfth tester's flood (docs/adr/0014, Update: attack 12), over HTTP against a
    real bank: bank 2 sends its approval of its own plan dated 999 ways, twice. An honest
    bank signs one word per question, so the second is bank 2's equivocation: kept beside
    the first and proven (the plan void: nothing held); no third is kept, so the log stays
    three documents and every later batch is `conflict`, changing nothing."""
    register(liar.target, "alice-p9")
    now = now_ms()
    plan = _mallorys_plan("alice-p9", now, now + 600_000)
    proposal = sign_log(liar.key, "proposal", plan=plan.id, plan_digest=plan.digest, by=B2,
                        time=now, document=plan.doc)
    record = liar.record(SigningKey.generate().public_key, SigningKey.generate().public_key)
    answers = []
    for batch in range(2):
        flood = [sign_log(liar.key, "approval", plan=plan.id, plan_digest=plan.digest, by=B2,
                          time=now + 999 * batch + k, consents=[], records=[record]).doc
                 for k in range(999)]
        answer = liar.answer_of(liar.sign("plan", log=[proposal.doc, *flood]))
        answers.append(answer.get("error") or answer["type"])
    assert answers == ["ack", "conflict"], answers
    kept = read(liar.target, lambda r: r.record("plans", plan_key(plan.id)))
    assert [d["log"]["type"] for d in kept["log"]] == ["proposal", "approval", "approval"]
    [proof] = read(liar.target, lambda r: [p for _, p in r.records("proofs")
                                           if p.get("type") == "plan_equivocation"
                                           and p["log"][0]["log"]["plan"] == plan.id])
    assert verify_proof(proof).culprit == liar.key.public_key
    assert read(liar.target, lambda r: r.open_holds()) == []
