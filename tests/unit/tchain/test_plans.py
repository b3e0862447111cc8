"""Execution plans in the core (docs/protocol.md §14): the plan document's rules, the signed
documents of its log, and the state every participant derives from the same log."""

from __future__ import annotations

import copy

import pytest

from tchain.errors import (
    BadRequestError,
    ConflictError,
    EncodingError,
    ForbiddenError,
    SignatureError,
)
from tchain.plans import Execution, LogDoc, Plan, plan_document, plan_from_file, plan_id
from tests.planbuild import (
    ALICE,
    B1,
    B2,
    B3,
    BANK_KEYS,
    BOB,
    DVP_TOML,
    KEYS,
    PLAN_UUID,
    T0,
    approval,
    approved_dvp,
    consent,
    dvp_document,
    proposal,
    record,
    word,
)

ZERO = "0" * 64


# --- the document ------------------------------------------------------------------------------

def test_a_plan_file_in_toml_is_the_same_plan_as_in_json():
    toml = plan_document(plan_from_file(DVP_TOML, toml=True), plan_id_=plan_id(B1, PLAN_UUID),
                         proposer=ALICE, time=T0)
    assert Plan.from_dict(toml).digest == Plan.from_dict(dvp_document()).digest


def test_the_plan_file_fills_in_banks_and_what_is_reversible():
    plan = Plan.from_dict(dvp_document())
    assert [(i.bank, i.reversible) for i in plan.instructions] == [
        (B1, True), (B2, True), (B1, False), (B2, False)]
    assert plan.id == f"{B1}/106/{PLAN_UUID}" and plan.deadline == T0 + 600_000
    assert plan.signers() == (ALICE, BOB) and plan.signers(B2) == (BOB,)


def _with_instruction(index, **changes):
    doc = dvp_document()
    doc["instructions"] = copy.deepcopy(doc["instructions"])
    doc["instructions"][index].update(changes)
    return doc


@pytest.mark.parametrize(("doc", "says"), [
    (dvp_document(id="bank1.example/107/" + str(PLAN_UUID)), "106"),
    (dvp_document(id="bank2.example/106/" + str(PLAN_UUID)), "proposer"),
    (dvp_document(deadline=T0), "deadline"),
    (_with_instruction(2, hold=2), "must be done by bank2.example"),
    (_with_instruction(3, hold=1), "already transferred"),
    (_with_instruction(2, reversible=True), "reversible false"),
    (_with_instruction(0, bank=B2), "not a customer of bank2.example"),
    (_with_instruction(2, to="carol*bank3.example"), "not a contributor"),
    (_with_instruction(0, op="issue", to=BOB), "issuer"),
    (_with_instruction(1, seq=3), "seqs are 1, 2"),
    (_with_instruction(0, amount="0"), "at least 1"),
    (_with_instruction(0, memo="x"), "fields"),
])
def test_a_plan_that_breaks_a_rule_is_refused(doc, says):
    with pytest.raises(EncodingError, match=says):
        Plan.from_dict(doc)


def test_a_plan_that_leaves_a_hold_open_is_refused():
    doc = dvp_document()
    doc["instructions"] = doc["instructions"][:3]
    with pytest.raises(EncodingError, match=r"holds \[2\] are never"):
        Plan.from_dict(doc)


def test_a_log_document_round_trips_and_any_changed_field_breaks_its_signature():
    doc = proposal()
    again = LogDoc.from_bytes(doc.raw)
    assert again.id == doc.id
    tampered = copy.deepcopy(doc.doc)
    tampered["log"]["document"]["instructions"][0]["amount"] = "1"
    with pytest.raises(SignatureError):
        LogDoc.from_dict(tampered).verify(BANK_KEYS[B1])


# --- consent and approval ----------------------------------------------------------------------

def test_nothing_is_approved_until_every_contributor_approves_with_its_customers_consent():
    ex = Execution.start(proposal(), BANK_KEYS)
    assert ex.state == "proposed" and ex.turn() is None
    ex = ex.append(approval(ex.plan, B1))
    assert ex.state == "proposed" and ex.turn() is None
    ex = ex.append(approval(ex.plan, B2))
    assert ex.state == "approved" and ex.turn() == ex.plan.instruction(1)
    assert ex.chains == {ALICE: "a1" * 32, BOB: "b2" * 32} and set(ex.consents) == {1, 2}
    assert Execution.replay(ex.docs, BANK_KEYS).to_dict() == ex.to_dict()


def test_an_approval_without_its_customers_consent_is_refused():
    ex = Execution.start(proposal(), BANK_KEYS)
    with pytest.raises(BadRequestError, match=r"consents to holds \[1\], got \[\]"):
        ex.append(approval(ex.plan, B1, consents=[]))


def test_a_consent_not_signed_by_the_customer_is_refused():
    ex = Execution.start(proposal(), BANK_KEYS)
    forged = consent(ex.plan, ALICE, 1, key=KEYS[B1])  # the bank signs for its customer
    with pytest.raises(SignatureError, match="consent to hold 1"):
        ex.append(approval(ex.plan, B1, consents=[forged]))


@pytest.mark.parametrize("change", [{"amount": "999"}, {"to": f"carol*{B2}"}, {"hold": 2},
                                    {"digest": "00" * 32}])
def test_a_consent_to_anything_but_the_plans_hold_is_refused(change):
    ex = Execution.start(proposal(), BANK_KEYS)
    body = {**consent(ex.plan, ALICE, 1).doc["intent"]["body"], **change}
    with pytest.raises(BadRequestError, match="not the plan's"):
        ex.append(approval(ex.plan, B1, consents=[consent(ex.plan, ALICE, 1, body=body)]))


def test_a_consent_to_another_plan_is_refused():
    other = Plan.from_dict(_with_instruction(0, amount="999"))
    ex = Execution.start(proposal(), BANK_KEYS)
    with pytest.raises(BadRequestError, match="not the plan's"):
        ex.append(approval(ex.plan, B1, consents=[consent(other, ALICE, 1)]))


def test_a_bank_cannot_vouch_for_another_banks_customer():
    ex = Execution.start(proposal(), BANK_KEYS)
    with pytest.raises(SignatureError):
        ex.append(approval(ex.plan, B1, records=[record(ALICE, B1, signer=B2)]))
    with pytest.raises(BadRequestError, match="records of exactly"):
        ex.append(approval(ex.plan, B1, records=[]))


def test_an_observer_and_a_stranger_decide_nothing():
    ex = Execution.start(proposal(), BANK_KEYS)
    with pytest.raises(ForbiddenError, match="not a contributor"):
        ex.append(word(ex.plan, B3, "approval", consents=[], records=[]))


def test_a_document_signed_by_another_bank_than_it_names_is_refused():
    ex = Execution.start(proposal(), BANK_KEYS)
    doc = approval(ex.plan, B2)
    lie = copy.deepcopy(doc.doc)
    lie["log"]["by"] = B1
    with pytest.raises(SignatureError):
        ex.append(LogDoc.from_dict(lie))


def test_a_bank_decides_once_and_a_rejection_fails_the_plan():
    ex = Execution.start(proposal(), BANK_KEYS)
    ex = ex.append(word(ex.plan, B2, "rejection", error="insufficient_funds", reason="no bonds"))
    assert ex.state == "failed"
    # bank2 said no already: its yes is kept as its equivocation (docs/adr/0014)
    twice = ex.append(approval(ex.plan, B2))
    assert (twice.state, twice.culprit) == ("failed", B2)
    assert ex.append(approval(ex.plan, B1)).state == "failed"  # bank1's yes changes nothing
    ex2 = approved_dvp()
    ex2 = ex2.append(word(ex2.plan, B2, "rejection", error="forbidden", reason="changed my mind"))
    assert (ex2.state, ex2.culprit) == ("failed", B2)  # nothing moved: the plan is void


def test_words_on_a_plan_crossing_a_rejection_are_kept_whatever_the_order():
    ex = Execution.start(proposal(), BANK_KEYS)
    no = word(ex.plan, B2, "rejection", error="expired", reason="too late")
    yes = approval(ex.plan, B1)
    one, other = ex.append(no).append(yes), ex.append(yes).append(no)
    assert one.state == other.state == "failed"
    assert {d.id for d in one.docs} == {d.id for d in other.docs}
    assert one.append(word(ex.plan, B1, "rejection", error="forbidden", reason="and no")
                      ).culprit == B1  # its yes and its no: proven, kept (docs/adr/0014)


def test_the_same_document_twice_changes_nothing():
    ex = approved_dvp()
    assert ex.append(ex.docs[1]) is ex


def test_a_proposal_by_another_bank_or_naming_unpinned_banks_is_refused():
    with pytest.raises(BadRequestError, match="be by its bank"):
        Execution.start(proposal(by=B2), BANK_KEYS)
    with pytest.raises(ForbiddenError, match="not pinned"):
        Execution.start(proposal(), {B1: BANK_KEYS[B1], B2: BANK_KEYS[B2]})


# --- execution --------------------------------------------------------------------------------

def test_an_instruction_out_of_turn_or_by_another_bank_is_refused():
    ex = approved_dvp()
    with pytest.raises(ConflictError, match="not due"):
        ex.append(word(ex.plan, B2, "completion", seq=2, status="done", receipts=[],
                       error=None))
    with pytest.raises(ForbiddenError, match=r"bank1\.example.s to do"):
        ex.append(word(ex.plan, B2, "completion", seq=1, status="done", receipts=[],
                       error=None))
    pending = Execution.start(proposal(), BANK_KEYS)
    with pytest.raises(ConflictError, match="not due"):
        pending.append(word(pending.plan, B1, "completion", seq=1, status="failed", receipts=[],
                            error="insufficient_funds"))


def test_a_hold_that_fails_is_compensated():
    ex = approved_dvp()
    ex = ex.append(word(ex.plan, B1, "completion", seq=1, status="failed", receipts=[],
                        error="insufficient_funds"))
    assert ex.status(1) == "failed" and ex.state == "compensated"  # no hold stood
    assert ex.turn() is None


def test_a_hold_not_done_by_the_deadline_is_compensated_by_a_contributors_word():
    ex = approved_dvp()
    early = word(ex.plan, B2, "completion_rejection", seq=1, completion=ZERO, error="expired",
                 reason="the deadline passed", time=ex.plan.deadline)
    with pytest.raises(ConflictError, match="premature"):  # dated at its due, not after
        ex.append(early)
    late = word(ex.plan, B2, "completion_rejection", seq=1, completion=ZERO, error="expired",
                reason="the deadline passed", time=ex.plan.deadline + 1)
    ex = ex.append(late)
    assert ex.state == "compensated"
    # the first word is final; another, different, is bank2's equivocation (docs/adr/0014)
    assert ex.append(word(ex.plan, B2, "completion_approval", seq=1, completion=ZERO)
                     ).culprit == B2
    # what bank1 did meanwhile is logged all the same (so a hold it made is released too)
    failed = word(ex.plan, B1, "completion", seq=1, status="failed", receipts=[],
                  error="insufficient_funds")
    ex = ex.append(failed)
    assert ex.state == "compensated" and ex.instructions[1].completion == failed
    assert ex.append(word(ex.plan, B1, "completion", seq=1, status="failed", receipts=[],
                          error="forbidden")).culprit == B1  # two accounts of one step
    with pytest.raises(ConflictError, match="not due yet"):
        ex.append(word(ex.plan, B1, "completion_rejection", seq=2, completion=ZERO,
                       error="expired", reason="too early to say"))


def test_a_completion_is_not_believed_without_a_receipt_this_bank_can_check():
    ex = approved_dvp()
    with pytest.raises(BadRequestError, match="receipt"):
        ex.append(word(ex.plan, B1, "completion", seq=1, status="done", receipts=[],
                       error=None))


def test_an_await_completes_when_every_other_contributor_approves_it():
    doc = dvp_document()
    doc["instructions"] = [{"seq": 1, "bank": B1, "op": "await", "until": T0 + 10,
                            "reversible": True}] + [
        {**i, "seq": i["seq"] + 1, **({"hold": i["hold"] + 1} if "hold" in i else {})}
        for i in doc["instructions"]]
    ex = Execution.start(proposal(doc), BANK_KEYS)
    ex = ex.append(approval(ex.plan, B1)).append(approval(ex.plan, B2))
    with pytest.raises(BadRequestError, match="or later"):
        ex.append(word(ex.plan, B1, "completion", seq=1, status="done", receipts=[],
                       error=None, time=T0 + 5))
    done = word(ex.plan, B1, "completion", seq=1, status="done", receipts=[], error=None,
                time=T0 + 10)
    ex = ex.append(done)
    assert ex.state == "executing" and ex.status(1) == "proposed"
    with pytest.raises(ForbiddenError, match="own instruction"):
        ex.append(word(ex.plan, B1, "completion_approval", seq=1, completion=done.id))
    with pytest.raises(BadRequestError, match="names completion"):
        ex.append(word(ex.plan, B2, "completion_approval", seq=1, completion=ZERO))
    ex = ex.append(word(ex.plan, B2, "completion_approval", seq=1, completion=done.id,
                        time=T0 + 20))
    assert ex.status(1) == "complete" and ex.turn() == ex.plan.instruction(2)
    assert ex.turn_since() == T0 + 20 and ex.due() == ex.plan.deadline
