"""A plan's transfer against the clocks and the turn (docs/protocol.md §14, "the payee bank
decides"): a contributor whose clock says "late" while an honest, slow transfer is in flight
must not make the plan pay one side only; the payee bank credits a plan's transfer only if
its own log shows it approved and due, and its first word on it (credited, or refused as
late) is final. After each flow: every chain verifies, every asset sums to zero, no hold is
open, every audit is clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.encoding import parse
from tchain.errors import ConflictError, ForbiddenError
from tchain.flow_states import FlowType
from tchain.plans import sign_log
from tchain.rules import hold_for_plan
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, all_sound
from tests.unit.validator.test_plans import B1, B2, B3, consent, dvp, state, three_banks
from validator.flows import signer, start_held_flow
from validator.plans import Kept, Plans, plan_key
from validator.store import Writer


@pytest.fixture
def net(tmp_path: Path) -> tuple[Net, dict[str, NetBank], dict[str, Customer]]:
    """Three contributing banks, each on its own clock (clocks between banks differ)."""
    return three_banks(tmp_path, Clock)


def three_contributors() -> dict[str, Any]:
    return dvp(participants=[{"bank": b, "role": "contributor"} for b in (B1, B2, B3)])


def outbox(bank: NetBank, kind: str | None = None) -> list[str]:
    with bank.ledger.store.read() as r:
        return [m for m, item in r.records("outbox")
                if kind is None or item["message"]["message"]["type"] == kind]


def _confirms_to(bank: NetBank, message: str, peer: str) -> bool:
    """Whether ``message`` carries ``bank``'s confirmation (docs/adr/0014) to ``peer``."""
    with bank.ledger.store.read() as r:
        item = r.record("outbox", message)
    return item is not None and item["peer"] == peer and any(
        d["log"]["type"] == "confirmation" and d["log"]["by"] == bank.name
        for d in item["message"]["message"]["log"])


def logs_only(network: Net, banks: dict[str, NetBank], rounds: int = 30) -> None:
    """Tick every bank and deliver only plan logs (transfers stay in flight)."""
    for _ in range(rounds):
        moved = False
        for bank in banks.values():
            bank.interbank.tick()
            for m in outbox(bank, "plan"):
                moved |= network.deliver(bank, m) is not None
        if not moved:
            return


def signed_both(network: Net, banks: dict[str, NetBank], people: dict[str, Customer],
                file: dict[str, Any]) -> str:
    """``file`` proposed by alice, both customers' consents given, logs exchanged until
    bank1's transfer of alice's USD is in flight (queued, not delivered): the plan id."""
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key, file)
    plan = ex.plan.id
    logs_only(network, banks)
    for name, bank in (("alice", B1), ("bob", B2)):
        Plans(banks[bank].ledger).consent(plan, consent(banks[bank], people[name], plan))
        logs_only(network, banks)
    assert outbox(banks[B1], "transfer"), "bank1's transfer is in flight"
    assert {state(b, plan).turn().seq for b in banks.values()} == {3}
    return plan


def test_a_third_banks_clock_saying_late_does_not_pay_one_side_of_a_dvp(net):
    """The race of ADR 0010: bank3's clock runs ahead; it would call bank1's transfer late
    while it is in flight, and bank2 would release bob's bond, then credit bob the USD
    (alice paid, bob kept his bond). Only the payee bank may call a transfer late."""
    network, banks, people = net
    plan = signed_both(network, banks, people, three_contributors())
    banks[B3].ledger.clock.now += 700_000  # far past the transfer's due, by bank3's clock
    logs_only(network, banks)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 10)  # still held
    banks[B3].ledger.clock.now -= 700_000  # its words dated ahead would be refused (ADR 0012)
    network.run(50)  # the transfer lands, in time by its payee bank's clock
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (1000, 0)
    assert banks[B1].balance(people["alice"], f"{B2}:BOND") == (10, 0)
    all_sound(*banks.values(), chains_verify=True)


def test_a_late_word_on_a_transfer_by_any_bank_but_its_payees_is_refused(net):
    network, banks, people = net
    plan = signed_both(network, banks, people, three_contributors())
    ex = state(banks[B3], plan)
    b3 = banks[B3]
    lie = sign_log(b3.key, "completion_rejection", plan=plan, plan_digest=ex.plan.digest,
                   by=B3, time=b3.ledger.clock() + 700_000, seq=3, completion="0" * 64,
                   error="expired", reason="instruction 3 was due")
    with pytest.raises(ForbiddenError, match="payee"):
        ex.append(lie)
    [transfer] = outbox(banks[B1], "transfer")
    network.deliver(banks[B1], transfer)  # credited; bank1 logs its completion
    for m in outbox(banks[B1], "plan"):
        with banks[B1].ledger.store.read() as r:
            to_b2 = r.record("outbox", m)["peer"] == B2
        if to_b2:
            network.deliver(banks[B1], m)
    at2 = state(banks[B2], plan)
    assert at2.instructions[3].completion is not None and B3 not in at2.instructions[3].approvals
    lie = sign_log(b3.key, "completion_rejection", plan=plan, plan_digest=ex.plan.digest,
                   by=B3, time=b3.ledger.clock(), seq=3,
                   completion=at2.instructions[3].completion.id, error="expired", reason="late")
    with pytest.raises(ConflictError, match="irreversible"):  # what it did is done
        at2.append(lie)
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def test_the_payee_bank_that_called_a_transfer_late_never_credits_it(net):
    """Bank2's own clock passes the transfer's due before it lands: its first word (refused,
    expired) is final, the late transfer is refused, every hold released."""
    network, banks, people = net
    plan = signed_both(network, banks, people, three_contributors())
    for bank in banks.values():  # time passes everywhere (a word dated ahead is refused)
        bank.ledger.clock.now += 700_000
    logs_only(network, banks)
    at2 = state(banks[B2], plan)
    assert at2.state == "failed" and at2.instructions[3].rejections == {B2}
    assert [p["type"] for p in banks[B2].interbank.proofs()] == ["plan_default"]
    network.run(50)  # the transfer lands late: refused, alice's hold released
    assert {state(b, plan).state for b in banks.values()} == {"failed"}
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (0, 0)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 0)
    all_sound(*banks.values(), chains_verify=True)


def test_a_payee_bank_that_credited_in_time_never_calls_the_transfer_late(net):
    """Bank2 credits in time; its clock then passes the due before bank1's completion comes:
    it must not call late what it credited (its first word was "credited")."""
    network, banks, people = net
    plan = signed_both(network, banks, people, three_contributors())
    banks[B1].up = False  # bank1 will not hear the answer for a while
    [transfer] = outbox(banks[B1], "transfer")
    with banks[B1].ledger.store.read() as r:
        message = r.record("outbox", transfer)["message"]
    banks[B2].interbank.receive(message, banks[B1].key.public_key)
    banks[B2].ledger.clock.now += 700_000
    banks[B3].ledger.clock.now += 700_000
    logs_only(network, {n: b for n, b in banks.items() if n != B1})
    assert state(banks[B2], plan).instructions[3].rejections == frozenset()
    assert banks[B2].balance(people["bob"], f"{B2}:BOND") == (50, 10)
    banks[B1].ledger.clock.now += 700_000  # time passed at bank1 too while it was down
    banks[B1].up = True
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def _early_transfer(b1: NetBank, alice: Customer, plan: str) -> str:
    """Bank1 (lying, or early) holds alice's USD and sends its transfer to bank2 before the
    plan is approved everywhere: the outbox message id."""
    now = b1.ledger.clock()
    with b1.ledger.store.read() as r:
        kept = Kept.from_dict(r.record("plans", plan_key(plan)))
    [mine] = kept.consents.values()

    def work(w: Writer) -> str:
        outcome = hold_for_plan(b1.ledger.bank, w.state(alice.chain), mine, now)
        [entry], [after] = outcome.entries, outcome.states
        w.append(entry, after)
        return start_held_flow(b1.key, b1.name, w, FlowType.TRANSFER, B2, entry, after,
                               now + 10_000, now, now, extra={"payee": "0" * 64},
                               hold=entry, payer=signer(b1.key, b1.name, after),
                               kyc_required=False)

    return b1.ledger.store.write(work)


def test_a_plan_transfer_before_the_plan_is_approved_is_refused_and_released(net):
    """Bank1 holds alice's USD and sends it to bob before bob signed: bank2's log shows it
    never approved the plan, so it refuses (``conflict``: only its log shows the lie, so no
    proof), and bank1 releases the hold."""
    network, banks, people = net
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key,
                                            three_contributors())
    plan = ex.plan.id
    network.run()
    Plans(banks[B1].ledger).consent(plan, consent(banks[B1], people["alice"], plan))
    network.run()
    assert state(banks[B2], plan).state == "proposed"  # bob has not signed
    message = _early_transfer(banks[B1], people["alice"], plan)
    network.deliver(banks[B1], message)
    [(_, answer)] = [(m, a) for m, a in network.delivered if m == message]
    assert parse(answer)["message"]["error"] == "conflict", parse(answer)
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (0, 0)
    assert banks[B1].balance(people["alice"], f"{B1}:USD") == (5000, 0)  # refused: released
    all_sound(*banks.values(), chains_verify=True)


def test_a_transfer_that_outruns_the_words_before_it_waits_and_is_then_credited(net):
    """Bank1's approval of bob's hold (which makes its transfer due) and its transfer leave in
    the same write; the transfer reaches bank2 first: bank2's log lacks only others' words,
    so it answers ``pending`` (kept nowhere), and credits it once the log has come."""
    network, banks, people = net
    ex, _ = Plans(banks[B1].ledger).propose(people["alice"].key.public_key,
                                            three_contributors())
    plan = ex.plan.id
    logs_only(network, banks)
    Plans(banks[B1].ledger).consent(plan, consent(banks[B1], people["alice"], plan))
    logs_only(network, banks)
    Plans(banks[B2].ledger).consent(plan, consent(banks[B2], people["bob"], plan))
    for _ in range(30):  # logs only, until bank1's transfer is queued; bank3's
        if outbox(banks[B1], "transfer"):  # confirmation reaches bank2 only later
            break
        for bank in banks.values():
            for m in outbox(bank, "plan"):
                if bank is not banks[B3] or not _confirms_to(bank, m, B2):
                    network.deliver(bank, m)
    [transfer] = outbox(banks[B1], "transfer")
    payee = state(banks[B2], plan)  # bank1's approval of hold 2, or a confirmation, not here
    assert payee.turn().seq == 2 or not payee.confirmed  # yet (docs/adr/0014)
    assert network.deliver(banks[B1], transfer) == "peer answered pending"
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (0, 0)
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    assert banks[B2].balance(people["bob"], f"{B1}:USD") == (1000, 0)
    all_sound(*banks.values(), chains_verify=True)
