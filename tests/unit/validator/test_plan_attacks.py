"""The outside attacker's findings against execution plans (/work/scratch/attack8-report.md,
F1-F8), replayed against in-process banks with bank2 lying: every word it signs is sent with
its own key as a ``plan`` message, as the attacker did. The property (docs/adr/0012): before
the first irreversible step a plan is all or nothing; after it, it ends ``completed``, or
``failed`` with a proof ``tchain proof verify`` accepts against the bank that did not do its
part, never against an honest one. After each flow every chain verifies, every asset sums to
zero, no hold is open and every audit is clean (or the hold the plan still owes is named)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.encoding import parse
from tchain.errors import (
    BadRequestError,
    EncodingError,
    LimitExceededError,
    VerificationError,
)
from tchain.messages import Message, sign_message
from tchain.plans import LogDoc, Plan, plan_document, plan_id, sign_log
from tchain.plans.execution import ZERO_COMPLETION
from tchain.proofs import verify_proof
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, all_sound
from tests.unit.validator.test_plan_races import logs_only, outbox, signed_both, three_contributors
from tests.unit.validator.test_plans import B1, B2, B3, dvp, signed, state, three_banks
from validator.plans import MAX_OPEN, Plans

Banks = tuple[Net, dict[str, NetBank], dict[str, Customer]]


@pytest.fixture
def net(tmp_path: Path) -> Banks:
    """Banks 1, 2 and 3 on one clock (time passes for all alike)."""
    clock = Clock()
    return three_banks(tmp_path, lambda: clock)


def lie(liar: NetBank, to: NetBank, log: list[LogDoc] | list[Any]) -> dict[str, Any]:
    """``liar`` sends ``to`` a plan log as a peer message: the answer, parsed."""
    docs = [d.doc if isinstance(d, LogDoc) else d for d in log]
    message = sign_message(liar.key, "plan", liar.name, to.name, liar.ledger.clock(), log=docs)
    return parse(to.interbank.receive(message, liar.key.public_key))["message"]


def word(liar: NetBank, plan: str, type_: str, time: int | None = None, **fields: Any
         ) -> LogDoc:
    ex = state(liar, plan)
    return sign_log(liar.key, type_, plan=plan, plan_digest=ex.plan.digest, by=liar.name,
                    time=liar.ledger.clock() if time is None else time, **fields)


def advance(banks: dict[str, NetBank], ms: int) -> None:
    banks[B1].ledger.clock.now += ms  # one clock for all


def await_dvp(until: int) -> dict[str, Any]:
    """The attacker's a21: alice pays 900 USD, waits until ``until``, then bob's 9 BOND."""
    holds, transfers = dvp()["instructions"][:2], dvp()["instructions"][2:]
    holds[0]["amount"], holds[1]["amount"] = "900", "9"
    return dvp(instructions=[*holds, transfers[0], {"op": "await", "until": until},
                             transfers[1]])


def swapped(network: Net, banks: dict[str, NetBank], people: dict[str, Customer], plan: str
            ) -> None:
    """Run ``plan`` (an await_dvp) to its end: completed everywhere, alice has bob's 9 BOND,
    and every bank is sound."""
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    assert banks[B1].balance(people["alice"], f"{B2}:BOND") == (9, 0)
    all_sound(*banks.values(), chains_verify=True)


def test_f1_a_premature_expired_word_on_an_await_in_its_turn_is_refused(net: Banks) -> None:
    """a21: bank1 paid bob; during the await bank2 says "expired" (zero completion): it was
    applied, bob's bond released, alice paid for nothing. A word that nothing came is dated
    after the due, and not ahead of the receiver's clock."""
    network, banks, people = net
    until = banks[B1].ledger.clock() + 60_000
    plan = signed(network, banks, people, await_dvp(until), ("alice", B1), ("bob", B2))
    assert state(banks[B1], plan).turn().seq == 4
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (900, 0)
    early = word(banks[B2], plan, "completion_rejection", seq=4, completion=ZERO_COMPLETION,
                 error="expired", reason="nothing came")
    for honest in (banks[B1], banks[B3]):
        answer = lie(banks[B2], honest, [*state(banks[B2], plan).docs, early])
        assert answer["type"] == "refused" and answer["error"] == "conflict", answer
        assert "premature" in answer["reason"]
    due = state(banks[B1], plan).due()
    ahead = word(banks[B2], plan, "completion_rejection", time=due + 1, seq=4,
                 completion=ZERO_COMPLETION, error="expired", reason="nothing came")
    answer = lie(banks[B2], banks[B1], [*state(banks[B2], plan).docs, ahead])
    assert answer["error"] == "stale_time", answer  # dated ahead of bank1's clock
    assert {state(b, plan).state for b in banks.values()} == {"executing"}
    advance(banks, 60_000)
    swapped(network, banks, people, plan)


def test_f1_a_late_word_on_an_await_releases_nothing_and_proves_the_default(
        net: Banks) -> None:
    """Past an await's due (bank1 down), bank2's word that it did not come is the
    plan_default proof against bank1, and fails nothing: bob's bond stays held, owed to
    alice, until bank1 does its await late; then bank2 approves it all the same and the
    plan completes (its proof stays: bank1 was late)."""
    network, banks, people = net
    until = banks[B1].ledger.clock() + 60_000
    plan = signed(network, banks, people, await_dvp(until), ("alice", B1), ("bob", B2))
    banks[B1].up = False
    advance(banks, 60_000 + 600_000 + 1)
    network.run(50)
    at2 = state(banks[B2], plan)
    assert at2.state == "executing" and at2.instructions[4].rejections == {B2}
    [proof] = [p for p in banks[B2].interbank.proofs() if p["type"] == "plan_default"]
    assert verify_proof(proof).culprit == banks[B1].key.public_key
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 9)  # owed to alice
    banks[B1].up = True
    swapped(network, banks, people, plan)


def test_f6_an_await_completion_dated_ahead_is_refused_and_approved_only_at_its_time(
        net: Banks) -> None:
    """a18: an await completion dated ``until`` sent at once was approved, and the next
    transfer ran two minutes early. Now it is refused as dated ahead; sent in time it is
    taken, and approved only once the receiver's own clock reached ``until``."""
    network, banks, people = net
    until = banks[B1].ledger.clock() + 120_000
    file = await_dvp(until)
    file["instructions"][3]["bank"] = B2  # bank2 does the await
    plan = signed(network, banks, people, file, ("alice", B1), ("bob", B2))
    assert state(banks[B1], plan).turn().seq == 4
    done = word(banks[B2], plan, "completion", time=until, seq=4, status="done", receipts=[],
                error=None)
    answer = lie(banks[B2], banks[B1], [*state(banks[B2], plan).docs, done])
    assert answer["error"] == "stale_time", answer
    advance(banks, 119_000)  # within the skew: taken, but not approved before until
    assert lie(banks[B2], banks[B1], [*state(banks[B2], plan).docs, done])["type"] == "ack"
    at1 = state(banks[B1], plan)
    assert at1.instructions[4].completion == done and at1.instructions[4].approvals == set()
    assert banks[B1].balance(people["alice"], f"{B2}:BOND") == (0, 0)
    advance(banks, 1_000)
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def _paid_not_approved(network: Net, banks: dict[str, NetBank]) -> str:
    """Bank1's transfer of alice's USD lands at bank2 (bob credited) and bank1 logs its
    completion; bank3 approves it; bank2's word on it is not out yet: the plan id."""
    [transfer] = outbox(banks[B1], "transfer")
    network.deliver(banks[B1], transfer)
    for m in outbox(banks[B1], "plan"):
        with banks[B1].ledger.store.read() as r:
            to_b3 = r.record("outbox", m)["peer"] == B3
        if to_b3:
            network.deliver(banks[B1], m)
    for m in outbox(banks[B3], "plan"):
        with banks[B3].ledger.store.read() as r:
            to_b1 = r.record("outbox", m)["peer"] == B1
        if to_b1:
            network.deliver(banks[B3], m)
    return transfer


def test_f2_a_rejection_of_a_correct_irreversible_completion_is_refused_at_every_bank(
        net: Banks) -> None:
    """a1: bank2 rejects bank1's logged transfer ("receipt is wrong"): refused (`conflict`)
    where the completion is logged, and (`bad_request`) where it is not yet, never applied.
    The plan goes on and completes."""
    network, banks, people = net
    plan = signed_both(network, banks, people, three_contributors())
    _paid_not_approved(network, banks)
    at1 = state(banks[B1], plan)
    completion = at1.instructions[3].completion
    assert completion is not None
    rejection = word(banks[B2], plan, "completion_rejection", seq=3, completion=completion.id,
                     error="bad_request", reason="receipt is wrong")
    answer = lie(banks[B2], banks[B1], [*at1.docs, rejection])
    assert answer["error"] == "conflict", answer
    unseen = lie(banks[B2], banks[B3], [*state(banks[B2], plan).docs, rejection])
    assert unseen["type"] == "refused", unseen
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    advance(banks, 700_000)  # a completed plan is not repainted by a word said after it
    late = word(banks[B2], plan, "completion_rejection", seq=3, completion=ZERO_COMPLETION,
                error="expired", reason="nothing came")
    answer = lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, late])
    assert answer["error"] == "conflict" and "completed" in answer["reason"], answer
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def test_f2_f4_a_payee_bank_that_credited_and_says_nothing_came_is_proven_at_fault(
        net: Banks) -> None:
    """The variant plans2 left: bank2 credited bob, then (past the due, its approval never
    sent) signs that nothing came. An honest payee bank says one or the other: both words are
    kept at every bank whatever the order, the plan fails the same everywhere, and each
    honest bank keeps a `plan_contradiction` proof against bank2 that verifies."""
    network, banks, people = net
    plan = signed_both(network, banks, people, three_contributors())
    _paid_not_approved(network, banks)
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (1000, 0)
    advance(banks, 700_000)
    late = word(banks[B2], plan, "completion_rejection", seq=3, completion=ZERO_COMPLETION,
                error="expired", reason="nothing came")
    for honest in (banks[B1], banks[B3]):
        assert lie(banks[B2], honest, [*state(banks[B2], plan).docs, late])["type"] == "ack"
    network.run(50)
    states = {state(b, plan).state for b in banks.values()}
    assert states == {"failed"}, states
    for honest in (banks[B1], banks[B3]):
        proofs = [p for p in honest.interbank.proofs() if p["type"] == "plan_contradiction"]
        assert len(proofs) == 1
        summary = verify_proof(proofs[0])
        assert summary.culprit == banks[B2].key.public_key
    # without bank2's word that nothing came, the same log proves nothing against it
    forged = {k: v for k, v in proofs[0].items() if k != "sig"}
    forged["log"] = [d for d in forged["log"] if d["log"]["type"] != "completion_rejection"]
    forged["sig"] = banks[B3].key.sign("proof", forged)
    with pytest.raises(VerificationError, match="word that nothing came"):
        verify_proof(forged)
    all_sound(*banks.values(), chains_verify=True)


def test_f4_an_approval_to_one_bank_and_a_rejection_to_another_do_not_split_them(
        net: Banks) -> None:
    """a15: bank2 approves bank1's paid transfer to bank1 and tells bank3 nothing came. Both
    words are bank2's, signed: each bank takes the other's log with both, the states agree
    (failed, on the payee bank's word), and the contradiction is proven."""
    network, banks, people = net
    plan = signed_both(network, banks, people, three_contributors())
    _paid_not_approved(network, banks)
    completion = state(banks[B1], plan).instructions[3].completion
    assert completion is not None
    # bank2's own approval (it credited bob): a second one would be its equivocation
    # (docs/adr/0014, Update: attack 12), so the liar tells bank1 the one bank2 signed
    for m in outbox(banks[B1], "plan"):
        network.deliver(banks[B1], m)
    [yes] = [d for d in state(banks[B2], plan).docs
             if d.type == "completion_approval" and d.by == B2 and d.body["seq"] == 3]
    assert lie(banks[B2], banks[B1], [*state(banks[B1], plan).docs, yes])["type"] == "ack"
    advance(banks, 700_000)
    no = word(banks[B2], plan, "completion_rejection", seq=3, completion=ZERO_COMPLETION,
              error="expired", reason="nothing came")
    assert lie(banks[B2], banks[B3], [*state(banks[B3], plan).docs[:1], no])["type"] == "ack"
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"failed"}
    assert {len([p for p in b.interbank.proofs() if p["type"] == "plan_contradiction"])
            for b in (banks[B1], banks[B3])} == {1}
    all_sound(*banks.values(), chains_verify=True)


def _bank2s_turn(network: Net, banks: dict[str, NetBank], people: dict[str, Customer]) -> str:
    """A DvP run until bank2's transfer of bob's bond (seq 4) is the turn everywhere, that
    transfer queued at bank2 and not delivered: the plan id."""
    plan = signed_both(network, banks, people, three_contributors())
    [transfer] = outbox(banks[B1], "transfer")
    network.deliver(banks[B1], transfer)
    logs_only(network, banks)
    assert {state(b, plan).turn().seq for b in banks.values()} == {4}
    return plan


def test_f3_a_failed_transfer_without_its_payee_banks_word_is_refused(net: Banks) -> None:
    """a4/a6: bank2 logs its irreversible transfer `failed` with no receipt and an invented
    error (insufficient_funds, refused), though bank1, the payee bank, never refused it:
    refused at every bank, the turn stays bank2's (its default stays provable)."""
    network, banks, people = net
    plan = _bank2s_turn(network, banks, people)
    for error in ("insufficient_funds", "refused"):
        failed = word(banks[B2], plan, "completion", seq=4, status="failed", receipts=[],
                      error=error)
        for honest in (banks[B1], banks[B3]):
            answer = lie(banks[B2], honest, [*state(banks[B2], plan).docs, failed])
            assert answer["type"] == "refused", answer
    assert {state(b, plan).turn().seq for b in (banks[B1], banks[B3])} == {4}
    network.run(50)  # bank2 does pay in the end
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def test_f5_a_late_transfer_is_refused_by_its_payee_bank_and_the_default_proof_stands(
        net: Banks) -> None:
    """a12: bank1, the payee bank of bank2's transfer, calls it late (its clock, past the
    due) and keeps a plan_default proof; bank2's transfer then comes: bank1's first word is
    final, it is refused, bank2 releases bob's bond and logs its failed completion (bank1's
    word is in the log): the plan is failed with a proof that verifies against bank2."""
    network, banks, people = net
    plan = _bank2s_turn(network, banks, people)
    advance(banks, 700_000)
    banks[B1].interbank.tick()
    [proof] = [p for p in banks[B1].interbank.proofs() if p["type"] == "plan_default"]
    assert verify_proof(proof).culprit == banks[B2].key.public_key
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"failed"}
    assert state(banks[B2], plan).instructions[4].completion.body["error"] == "refused"
    assert banks[B1].balance(people["alice"], f"{B2}:BOND") == (0, 0)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 0)
    all_sound(*banks.values(), chains_verify=True)


def _proposal(liar: NetBank, time: int, deadline: int) -> LogDoc:
    file = {k: v for k, v in dvp(deadline=deadline).items() if k != "deadline_in"}
    doc = plan_document(file, plan_id_=plan_id(liar.name), confirm=True,
                        proposer=f"bob*{liar.name}", time=time)
    doc["proposer"] = f"bob*{liar.name}"
    plan = Plan.from_dict(doc)
    return sign_log(liar.key, "proposal", plan=plan.id, plan_digest=plan.digest, by=liar.name,
                    time=time, document=plan.doc)


def test_f7_a_proposal_dated_long_ago_or_with_a_far_deadline_is_refused(net: Banks) -> None:
    """a7/a10: bank2 proposed plans dated days ago, with deadlines up to 2^53-1 (the due of
    every irreversible step is as long, so no default could ever be proven)."""
    _, banks, _ = net
    now = banks[B2].ledger.clock()
    old = lie(banks[B2], banks[B1], [_proposal(banks[B2], now - 86_400_000, now + 60_000)])
    assert old["error"] == "stale_time", old
    far = lie(banks[B2], banks[B1], [_proposal(banks[B2], now, 2**53 - 1)])
    assert far["error"] == "bad_request" and "deadline" in far["reason"], far
    with pytest.raises(BadRequestError, match="deadline"):  # nor at its own bank
        Plans(banks[B1].ledger).propose(net[2]["alice"].key.public_key,
                                        dvp(deadline_in=31 * 86_400_000))
    with banks[B1].ledger.store.read() as r:
        assert [k for k, rec in r.records("plans") if "log" in rec] == []


@pytest.mark.parametrize("log", [[1], [{"log": {}, "sig": "00"}],
                                 [{"log": {"type": "proposal"}, "sig": "x" * 128}]])
def test_f8_a_malformed_plan_message_is_a_plain_400_not_kept(net: Banks, log: Any) -> None:
    """a28: malformed logs got a signed `refused` (kept); §11 says a plain 400, not kept."""
    _, banks, _ = net
    message = sign_message(banks[B2].key, "plan", B2, B1, banks[B2].ledger.clock(), log=log)
    with pytest.raises(EncodingError):
        banks[B1].interbank.receive(message, banks[B2].key.public_key)
    with banks[B1].ledger.store.read() as r:
        assert r.answer(Message.from_dict(message).id) is None


def test_f7_a_flood_of_proposals_is_capped_per_customer_and_per_peer(net: Banks) -> None:
    """a26: 200 proposals naming alice, acked in one batch, kept for ever. A customer, or a
    peer's customers, may have MAX_OPEN plans open at a bank; more are refused."""
    _, banks, people = net
    alice = people["alice"].key.public_key
    for _ in range(MAX_OPEN):
        Plans(banks[B1].ledger).propose(alice, dvp())
    with pytest.raises(LimitExceededError):
        Plans(banks[B1].ledger).propose(alice, dvp())
    now = banks[B2].ledger.clock()
    for _ in range(MAX_OPEN):
        assert lie(banks[B2], banks[B3], [_proposal(banks[B2], now, now + 60_000)])["type"] \
            == "ack"
    flood = lie(banks[B2], banks[B3], [_proposal(banks[B2], now, now + 60_000)])
    assert flood["error"] == "limit_exceeded", flood
