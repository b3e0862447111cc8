"""The outside tester's fourteenth round against the confirmation round
(/work/scratch/attack14-report.md), replayed with three in-process banks; bank2 speaks only
through the liar (its own key), as the tester did. After each flow every asset sums to zero,
no hold is open once the plan ended, every chain verifies offline, every audit is clean, and
no honest bank is proven at fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.plans import Execution, LogDoc, Plan, plan_document, plan_id, sign_log
from tchain.proofs import verify_proof
from tests.helpers import Customer
from tests.interbank_net import Net, NetBank, all_sound
from tests.unit.validator.test_plan_attacks import Banks, lie
from tests.unit.validator.test_plan_confirmation import done_to_bank1_and_aborted_to_bank3
from tests.unit.validator.test_plan_equivocation import (
    consented_with_bank2_down,
    deliver_to,
    with_erin,
)
from tests.unit.validator.test_plan_equivocation_end import said
from tests.unit.validator.test_plan_races import logs_only
from tests.unit.validator.test_plans import B1, B2, B3, consent, state
from validator.plans import Plans


@pytest.fixture
def net(tmp_path: Path) -> Banks:
    """Banks 1, 2 and 3 on one clock; erin (100 GBP) at bank3, carol at bank1."""
    network, banks, people = with_erin(tmp_path)
    people["carol"] = banks[B1].join("carol")
    return network, banks, people


def _contributors() -> list[dict[str, str]]:
    return [{"bank": b, "role": "contributor"} for b in (B1, B2, B3)]


def _swap(first: dict[str, Any]) -> dict[str, Any]:
    """alice's 6 USD (bank1) and erin's 6 GBP (bank3) held; ``first``, bank1's to decide;
    then erin's GBP paid to alice."""
    return {"deadline_in": 8_000, "participants": _contributors(),
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "6"},
                {"op": "hold", "account": f"erin*{B3}", "asset": f"{B3}:GBP", "amount": "6"},
                first,
                {"op": "transfer", "hold": 2, "to": f"alice*{B1}"}]}


TO_CAROL = {"op": "transfer", "hold": 1, "to": f"carol*{B1}"}  # inside bank1 (cw_i1)
TO_ERIN = {"op": "transfer", "hold": 1, "to": f"erin*{B3}"}  # bank1 -> bank3 (cw1)


# --- Finding 1: a new plan without `confirm` ----------------------------------------------

def _liars_proposal(liar: NetBank, file: dict[str, Any], confirm: bool) -> LogDoc:
    """bank2's proposal of ``file`` for bob, dated now, with or without ``confirm``."""
    now = liar.ledger.clock()
    file = {**{k: v for k, v in file.items() if k != "deadline_in"},
            "deadline": now + file["deadline_in"]}
    doc = plan_document(file, plan_id_=plan_id(liar.name), proposer=f"bob*{liar.name}",
                        time=now, confirm=confirm)
    plan = Plan.from_dict(doc)
    return sign_log(liar.key, "proposal", plan=plan.id, plan_digest=plan.digest,
                    by=liar.name, time=now, document=plan.doc)


def test_f1_a_new_plan_without_confirm_is_refused_by_every_peer(net: Banks) -> None:
    """nc_legacy.py: bank2 proposed a plan dated now with no ``confirm``; bank1 and bank3
    took it, it ran under the rules before the round, and one side was paid while the other
    was released. A plan new to a bank is proposed since the round: without ``confirm`` it
    is refused ``bad_request``, and nothing is kept."""
    _, banks, _ = net
    for honest in (banks[B1], banks[B3]):
        old = lie(banks[B2], honest, [_liars_proposal(banks[B2], _swap(TO_CAROL), False)])
        assert old["error"] == "bad_request" and "confirm" in old["reason"], old
        with honest.ledger.store.read() as r:
            assert [k for k, rec in r.records("plans") if "log" in rec] == []
    new = lie(banks[B2], banks[B1], [_liars_proposal(banks[B2], _swap(TO_CAROL), True)])
    assert new["type"] == "ack", new
    all_sound(*banks.values(), chains_verify=True)


# --- Finding 2: confirmations counted by the order they came in ----------------------------

def _confirmed_at_bank3_before_bank2s_word(network: Net, banks: dict[str, NetBank],
                                           people: dict[str, Customer],
                                           file: dict[str, Any]) -> str:
    """``file`` approved by all (bank2 through the liar); bank2 approves steps 1 and 2 to
    both honest banks, and confirms step 3 to bank1 alone; bank3 has confirmed, and holds
    bank1's confirmation, not bank2's. The plan id."""
    plan = consented_with_bank2_down(network, banks, people, file)
    for _ in range(30):
        for b in (banks[B1], banks[B3]):
            for seq in (1, 2):
                st = state(b, plan).instructions[seq]
                if st.completion is not None and B2 not in st.approvals:
                    _tell(banks, b, plan, "completion_approval", seq=seq,
                          completion=st.completion.id)
            b.interbank.tick()
        ex1 = state(banks[B1], plan)
        if ex1.turn() == ex1.first_irreversible and B2 not in ex1.confirmations:
            _tell(banks, banks[B1], plan, "confirmation", seq=3)
        deliver_to(network, banks[B1], B3, "plan")
        ex3 = state(banks[B3], plan)
        if {B1, B3} <= set(ex3.confirmations):
            assert B2 not in ex3.confirmations
            return plan
        deliver_to(network, banks[B3], B1, "plan")
    raise AssertionError("bank3 never confirmed")


def _tell(banks: dict[str, NetBank], to: NetBank, plan: str, type_: str, **fields: Any
          ) -> None:
    w = said(banks[B2], to, plan, type_, **fields)
    assert lie(banks[B2], to, [*state(to, plan).docs, w])["type"] == "ack"


@pytest.mark.parametrize("first", [TO_CAROL, TO_ERIN], ids=["intra-bank", "cross-bank"])
def test_f2_a_confirmation_after_the_same_banks_proven_equivocation_still_counts(
        net: Banks, first: dict[str, Any]) -> None:
    """cw_split.py: bank3 confirmed, then got bank2's rejection of the plan it had approved
    (an equivocation), then bank2's confirmation, which it kept but did not count; bank1,
    the decider, had every confirmation and did step 3; bank3 refused bank1's done
    completion for good (alice paid, erin's hold stuck). The two banks held the same
    documents. Now a signed confirmation counts whoever signed it and whatever came
    before: the plan completes at both banks, bank2 its culprit."""
    network, banks, people = net
    plan = _confirmed_at_bank3_before_bank2s_word(network, banks, people, _swap(first))
    _tell(banks, banks[B3], plan, "rejection", error="bad_request", reason="no")
    _tell(banks, banks[B3], plan, "confirmation", seq=3)
    assert state(banks[B3], plan).confirmed  # bank1 holds the same three words
    network.run(50)
    banks[B1].ledger.clock.now += 10**6
    network.run(50)
    for b in (B1, B3):
        ex = state(banks[b], plan)
        assert (ex.state, ex.culprit) == ("completed", B2), (b, ex.state, ex.culprit)
        for p in banks[b].interbank.proofs():
            assert verify_proof(p).culprit == banks[B2].key.public_key, p["type"]
    payee = people["carol"] if first is TO_CAROL else people["erin"]
    assert banks[B1 if first is TO_CAROL else B3].balance(payee, f"{B1}:USD") == (6, 0)
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (6, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (94, 0)
    all_sound(*banks.values(), chains_verify=True)


# --- Finding 3: a lying decider's plan never ends ---------------------------------------------

def _bob_released_by_the_liar() -> dict[str, Any]:
    """dl_decider.py: alice's USD, erin's GBP and bob's 1 BOND held; bank2 decides step 4
    (it releases bob's hold); then alice pays erin and erin pays alice."""
    return {"deadline_in": 10_000, "participants": _contributors(),
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": f"{B1}:USD", "amount": "6"},
                {"op": "hold", "account": f"erin*{B3}", "asset": f"{B3}:GBP", "amount": "6"},
                {"op": "hold", "account": f"bob*{B2}", "asset": f"{B2}:BOND", "amount": "1"},
                {"op": "release", "hold": 3},
                {"op": "transfer", "hold": 1, "to": f"erin*{B3}"},
                {"op": "transfer", "hold": 2, "to": f"alice*{B1}"}]}


def _split_to_the_end(network: Net, banks: dict[str, NetBank], people: dict[str, Customer],
                      file: dict[str, Any], seq: int) -> list[Execution]:
    """``file`` consented by alice, erin and bob; every word travels, but bank2's done
    completion of its step ``seq`` reaches only bank1 (and bank3 through bank1), and bank3
    is told first that it failed; then bank2 goes down and time passes every due. bank1's
    and bank3's executions, which hold the same documents."""
    plan = _proposed_everywhere(network, banks, people, file)
    for name, bank in (("alice", B1), ("erin", B3), ("bob", B2)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
    done_to_bank1_and_aborted_to_bank3(network, banks, plan, seq)
    banks[B2].up = False
    network.run(50)
    banks[B1].ledger.clock.now += 10**6
    network.run(50)
    views = [state(banks[b], plan) for b in (B1, B3)]
    assert {d.id for d in views[0].docs} == {d.id for d in views[1].docs}
    return views


def test_f3_a_decider_that_says_done_and_aborted_ends_the_plan_alike_everywhere(
        net: Banks) -> None:
    """dl_decider.py: bank2, the decider of step 4, tells bank1 it was done and bank3 it
    aborted. Both honest banks compensated, but bank2 (which holds bob's BOND for the plan)
    never logs its compensation: the plan stayed ``compensating`` for good, counting toward
    its proposer's open plans, and step 4 was ``failed`` at one bank and ``proposed`` at the
    other. Now, once only proven equivocators have not compensated, the plan is ``failed``
    at both (culprit bank2), step 4's status is one, and both hold the same documents."""
    network, banks, people = net
    views = _split_to_the_end(network, banks, people, _bob_released_by_the_liar(), 4)
    for ex in views:
        assert (ex.state, ex.culprit) == ("failed", B2), (ex.state, ex.culprit)
    assert {ex.status(4) for ex in views} == {"failed"}
    for b in (B1, B3):
        for p in banks[b].interbank.proofs():
            assert verify_proof(p).culprit == banks[B2].key.public_key, p["type"]
        with banks[b].ledger.store.read() as r:
            [summary] = [rec["summary"] for _, rec in r.records("plans") if "log" in rec]
        assert summary["state"] == "failed"  # no longer open: it counts toward no limit
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    assert banks[B3].balance(people["erin"], f"{B1}:USD") == (0, 0)
    all_sound(*banks.values(), chains_verify=True)


# --- Finding 4: what a bank took that §14 does not allow -------------------------------------

def _proposed_everywhere(network: Net, banks: dict[str, NetBank],
                         people: dict[str, Customer], file: dict[str, Any] | None = None
                         ) -> str:
    """``file`` (else the plan bank2 decides: it releases bob's hold at step 4), known to
    every bank and approved by none (no customer consented yet). The plan id."""
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key,
                                            file or _bob_released_by_the_liar())
    logs_only(network, banks)
    for b in banks.values():
        assert state(b, ex.plan.id).state == "proposed"
    return ex.plan.id


@pytest.mark.parametrize("error", ["zzz", "refused"])
def test_f4_an_abort_whose_error_is_no_code_it_may_give_is_refused(net: Banks,
                                                                   error: str) -> None:
    """ab_fuzz2.py: bank3 took bank2's abort of its step with ``error`` "zzz", and
    "refused" (a transfer's failure carrying its release, never an abort's). Refused
    ``bad_request``, as misconduct, and nothing kept."""
    network, banks, people = net
    plan = _proposed_everywhere(network, banks, people)
    before = state(banks[B3], plan).docs
    aborted = said(banks[B2], banks[B3], plan, "completion", seq=4, status="failed",
                   receipts=[], error=error)
    answer = lie(banks[B2], banks[B3], [*before, aborted])
    assert answer["error"] == "bad_request" and error in answer["reason"], answer
    assert state(banks[B3], plan).docs == before
    assert [p["type"] for p in banks[B3].interbank.proofs()] == ["misconduct"]
    all_sound(*banks.values(), chains_verify=True)


def test_f4_an_abort_before_the_plan_is_approved_is_refused(net: Banks) -> None:
    """ab_fuzz2.py: bank3 appended bank2's abort sent before the plan was approved, and
    showed the plan ``proposed`` with step 4 ``failed``. Nothing waits on the decider
    before the plan is approved: refused ``conflict``, nothing kept; the plan then runs."""
    network, banks, people = net
    plan = _proposed_everywhere(network, banks, people)
    before = state(banks[B3], plan).docs
    aborted = said(banks[B2], banks[B3], plan, "completion", seq=4, status="failed",
                   receipts=[], error="conflict")
    assert lie(banks[B2], banks[B3], [*before, aborted])["error"] == "conflict"
    assert state(banks[B3], plan).docs == before
    for name, bank in (("alice", B1), ("erin", B3), ("bob", B2)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def test_f4_a_completed_plan_takes_at_most_one_more_word_of_a_bank(net: Banks) -> None:
    """rp_replay.py: each new confirmation bank2 signed after the plan completed was taken,
    one more document each time. Now the second is its equivocation (one word per
    question): kept once, proven, and every later one is refused; the plan stays
    ``completed``."""
    network, banks, people = net
    plan = _proposed_everywhere(network, banks, people)
    for name, bank in (("alice", B1), ("erin", B3), ("bob", B2)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
    network.run(50)
    assert state(banks[B1], plan).state == "completed"
    had = len(state(banks[B1], plan).docs)
    for _ in range(5):
        banks[B1].ledger.clock.now += 1
        again = said(banks[B2], banks[B1], plan, "confirmation", seq=4)
        lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, again])
    ex = state(banks[B1], plan)
    assert (ex.state, len(ex.docs)) == ("completed", had + 1)
    assert [verify_proof(p).culprit for p in banks[B1].interbank.proofs()] == \
        [banks[B2].key.public_key]
    all_sound(*banks.values(), chains_verify=True)


def test_f4_a_decision_on_a_completion_left_out_does_not_refuse_the_log_whole(
        net: Banks) -> None:
    """cw_relay.py: a log sent to bank3 was refused whole ``bad_request`` ("the decision on
    instruction 3 names completion ..., the log has None"): bank3 left bank1's done
    completion out (``conflict``: a confirmation it lacked), and then refused the word on it
    as malformed. A decision naming a completion the log does not hold, in its turn, is a
    conflict like the completion: left out, the rest taken, and the plan goes on once the
    missing word comes."""
    network, banks, people = net
    plan = _confirmed_at_bank3_before_bank2s_word(network, banks, people, _swap(TO_CAROL))
    deliver_to(network, banks[B3], B1, "plan")
    banks[B1].interbank.tick()
    done = state(banks[B1], plan).instructions[3].completion
    assert done is not None and done.body["status"] == "done"
    yes = said(banks[B2], banks[B3], plan, "completion_approval", seq=3, completion=done.id)
    answer = lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs, done, yes])
    assert answer.get("error") == "conflict", answer
    assert state(banks[B3], plan).instructions[3].completion is None
    for _ in range(10):  # bank2, through the liar, approves each step done, at both banks
        network.run(10)
        for b in (banks[B1], banks[B3]):
            for seq, st in state(b, plan).instructions.items():
                if st.completion is not None and B2 not in st.approvals:
                    _tell(banks, b, plan, "completion_approval", seq=seq,
                          completion=st.completion.id)
    assert {state(banks[b], plan).state for b in (B1, B3)} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


# --- Finding 2, every other place: an equivocator's two completions of a later step -----------

def test_f2_an_equivocators_two_completions_of_a_later_step_end_the_plan_alike(
        net: Banks) -> None:
    """The same split as Finding 3, on bank2's owed release of bob's hold (step 5), after
    the first irreversible step (alice pays carol, bank1's). bank1 is told it was done and
    approves it; bank3 is told it failed, and releases erin's hold. Before, the first
    completion each got was the one it used: bank1 waited at step 5 for good (bank3's
    compensation left out), bank3 had the plan failed. Now step 5 is ``failed`` at both, the
    plan ``failed`` (an irreversible step failed), culprit bank2, the same documents."""
    network, banks, people = net
    file = _bob_released_by_the_liar()
    file["instructions"][3:] = [TO_CAROL, {"op": "release", "hold": 3},
                                {"op": "transfer", "hold": 2, "to": f"alice*{B1}"}]
    for ex in _split_to_the_end(network, banks, people, file, 5):
        assert (ex.state, ex.culprit, ex.status(5)) == ("failed", B2, "failed"), ex.state
    assert banks[B1].balance(people["carol"], f"{B1}:USD") == (6, 0)  # step 4 was done
    assert banks[B3].balance(people["erin"], f"{B3}:GBP") == (100, 0)
    assert banks[B1].balance(people["alice"], f"{B3}:GBP") == (0, 0)
    for b in (B1, B3):
        for p in banks[b].interbank.proofs():
            assert verify_proof(p).culprit == banks[B2].key.public_key, p["type"]
    all_sound(*banks.values(), chains_verify=True)
