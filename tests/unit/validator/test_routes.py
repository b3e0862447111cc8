"""Payments through correspondent banks, in process (docs/adr/0015-correspondent-routes.md):
every hop mirrors its next hop's first answer; money is neither made nor lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.encoding import parse
from tchain.errors import BadRequestError, VerificationError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.records import make_record
from tchain.route import routed_body
from tests.helpers import Clock, Customer, sign_entry_as
from tests.interbank_net import Net, NetBank, pin, totals
from tests.routenet import alice_pays_carol, line, make_correspondent, routed, settle_all, sound
from validator.audit import audit
from validator.stuck import STUCK_ATTEMPTS, stuck_peers


def test_three_banks_in_a_line_pay_both_ways(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net = line(tmp_path, 3)
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500)
    b3.deposit(carol, 500)
    b1.submit(alice, "payment", routed(carol, b3, [b2], "bank1.example:USD", 101, 100))
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (399, 0)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    b3.submit(carol, "payment", routed(alice, b1, [b2], "bank3.example:USD", 51, 50))
    settle_all(clock, net)
    assert b3.balance(carol, "bank3.example:USD") == (449, 0)
    assert b1.balance(alice, "bank2.example:USD") == (50, 0)
    sound([b1, b2, b3])


def _payee_down(banks: list[NetBank]) -> None:
    banks[2].up = False


def _replies_lost(banks: list[NetBank]) -> None:
    banks[1].loses_replies = banks[2].loses_replies = True


def _open_holds(*banks: NetBank) -> int:
    total = 0
    for bank in banks:
        with bank.ledger.store.read() as r:
            total += len(r.open_holds())
    return total


def test_four_banks_in_a_line_pay_both_ways(tmp_path: Path) -> None:
    clock, (b1, b2, b3, b4), net = line(tmp_path, 4)
    alice, dave = b1.join("alice"), b4.join("dave")
    b1.deposit(alice, 500)
    b4.deposit(dave, 500)
    b1.submit(alice, "payment", routed(dave, b4, [b2, b3], "bank1.example:USD", 102, 100))
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (398, 0)
    assert b4.balance(dave, "bank3.example:USD") == (100, 0)
    b4.submit(dave, "payment", routed(alice, b1, [b3, b2], "bank4.example:USD", 12, 10))
    settle_all(clock, net)
    assert b1.balance(alice, "bank2.example:USD") == (10, 0)
    sound([b1, b2, b3, b4])


def test_unknown_payee_at_the_last_bank_releases_every_hold(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net = line(tmp_path, 3)
    alice, ghost = b1.join("alice"), Customer("ghost", chain="ab" * 32)
    b1.deposit(alice, 500)
    b1.submit(alice, "payment", routed(ghost, b3, [b2], "bank1.example:USD", 101, 100))
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    assert _open_holds(b1, b2, b3) == 0
    refusal = [parse(a)["message"] for _, a in net.delivered
               if parse(a)["message"]["to"] == "bank1.example"][-1]
    assert refusal["type"] == "refused" and refusal["error"] == "unknown_chain"
    sound([b1, b2, b3])


def test_an_asset_the_correspondent_does_not_take_is_refused_and_released(tmp_path: Path
                                                                          ) -> None:
    clock, (b1, b2, b3), net, alice, _ = alice_pays_carol(tmp_path, asset="bank1.example:EUR")
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:EUR") == (500, 0)
    [answer] = [parse(a)["message"] for _, a in net.delivered]
    assert answer["type"] == "refused" and answer["error"] == "route_refused"
    assert _open_holds(b1, b2, b3) == 0
    sound([b1, b2, b3])


def test_a_fee_past_what_the_payer_signed_is_refused(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net, alice, _ = alice_pays_carol(tmp_path, fee=5)
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    sound([b1, b2, b3])


def test_payee_bank_down_mid_route_then_back_ends_alike_everywhere(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path, before=_payee_down)
    settle_all(clock, net, rounds=4)
    assert b1.balance(alice, "bank1.example:USD") == (500, 101)  # held, never released
    assert _open_holds(b1, b2) == 2  # every hop's hold stands
    for bank in (b1, b2):  # and the books account for it mid-route
        report = audit(bank.ledger)
        assert report.ok, report.problems
    b3.up = True
    settle_all(clock, net)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    assert b1.balance(alice, "bank1.example:USD") == (399, 0)
    sound([b1, b2, b3])


def test_payee_bank_back_after_the_deadline_refuses_and_every_hold_is_released(
        tmp_path: Path) -> None:
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path, before=_payee_down)
    settle_all(clock, net, rounds=3)
    clock.now += 60_000  # long past the deadline: the payee's bank decides, by its clock
    b3.up = True
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)
    sound([b1, b2, b3])


def test_lost_answers_along_the_route_end_alike_everywhere(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path, before=_replies_lost)
    settle_all(clock, net, rounds=4)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)  # decided; nobody heard it
    assert b1.balance(alice, "bank1.example:USD") == (500, 101)
    b2.loses_replies = b3.loses_replies = False  # healed
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (399, 0)
    sound([b1, b2, b3])


def test_a_correspondent_that_keeps_the_money_leaves_a_proof(tmp_path: Path) -> None:
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", "bank1.example", clock)
    b2 = NetBank(tmp_path / "b2", "bank2.example", clock, fault="keep-routed")
    b3 = NetBank(tmp_path / "b3", "bank3.example", clock)
    pin(b1, b2)
    pin(b2, b3)
    make_correspondent(b2, accept=("bank1.example:USD",), pay="bank2.example:USD", fee=1)
    net = Net(b1, b2, b3)
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500)
    b1.submit(alice, "payment", routed(carol, b3, [b2], "bank1.example:USD", 101, 100))
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (500, 101)  # not settled on a lie
    with b1.ledger.store.read() as r:
        [(_, proof)] = list(r.records("proofs"))
    shown = verify_proof(proof)
    assert shown.type == "route_unpaid" and shown.culprit == b2.key.public_key
    assert "bank2.example took 101 bank1.example:USD" in shown.summary
    tampered = {**proof, "reason": "x"}
    with pytest.raises(VerificationError):
        verify_proof(tampered)
    sound([b3])
    assert all(t == 0 for t in totals(b1, b2, b3).values())


def _forged_forward(b2: NetBank, upstream: SignedEntry, payer: dict[str, Any], asset: str,
                    amount: int, now: int) -> dict[str, Any]:
    """Bank 2, lying: a transfer to bank 3 of a hold of ``amount`` ``asset`` on its bank chain
    forwarding ``upstream``, signed with its pinned key and never written in its books."""
    body = routed_body(upstream)
    assert body is not None and body.route is not None
    chain = b2.ledger.state(b2.ledger.bank_chain())
    intent = sign_intent(b2.key, "payment", chain.chain, chain.seq + 1, now, {
        "to": body.to, "to_validator": body.to_validator, "asset": asset, "amount": str(amount),
        "forward": upstream.id, "via": list(body.route.via[1:])})
    lie = sign_entry_as(b2.key, {
        "chain": chain.chain, "height": chain.height + 1, "prev": chain.head, "time": now,
        "kind": "payment", "intent": intent,
        "effects": [{"asset": asset, "balance": "0", "held": str(amount)}],
        "evidence": [upstream.doc], "validator": b2.key.public_key})
    return sign_message(b2.key, "transfer", "bank2.example", "bank3.example", now, hold=lie,
                        payer=payer, deadline=now + 10_000, kyc_required=False)


def _bank_payer(b2: NetBank) -> dict[str, Any]:
    chain = b2.ledger.state(b2.ledger.bank_chain())
    return make_record(b2.key, address=chain.address, owner=chain.owner, chain=chain.chain,
                       validator=b2.name)


def test_a_correspondent_cannot_hand_on_more_of_a_third_bank_s_iou_than_it_holds(
        tmp_path: Path) -> None:
    clock, (b1, b2, b3), _, _, carol = alice_pays_carol(tmp_path)
    # bank 2 hands bank 3 back 100 of bank 3's IOU, which it never held
    lie = _forged_forward(b2, _waiting_transfer(b1)[1], _bank_payer(b2), "bank3.example:USD", 100,
                          clock())
    answer = parse(b3.interbank.receive(lie, b2.key.public_key))["message"]
    assert answer["type"] == "refused" and answer["error"] == "position_exceeded"
    assert b3.balance(carol, "bank3.example:USD") == (0, 0)
    with b3.ledger.store.read() as r:
        proofs = [p for _, p in r.records("proofs")]
    assert [verify_proof(p).type for p in proofs] == ["misconduct"]
    sound([b3])
    assert all(t == 0 for t in totals(b1, b2, b3).values())


def test_a_payment_handed_on_twice_is_credited_once(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net, _, carol = alice_pays_carol(tmp_path)
    upstream = _waiting_transfer(b1)[1]
    settle_all(clock, net)
    again = _forged_forward(b2, upstream, _bank_payer(b2), "bank2.example:USD", 100, clock())
    answer = parse(b3.interbank.receive(again, b2.key.public_key))["message"]
    assert (answer["type"], answer["error"]) == ("refused", "conflict")  # another hold (attack 13)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    sound([b1, b2, b3])


def test_a_route_a_correspondent_rewrites_is_misconduct(tmp_path: Path) -> None:
    clock, (b1, b2, b3), _, _, carol = alice_pays_carol(tmp_path)
    upstream = _waiting_transfer(b1)[1]
    for asset, amount, error in (("bank2.example:USD", 102, "bad_request"),  # more than got
                                 ("bank2.example:USD", 99, "bad_request")):  # under receive
        lie = _forged_forward(b2, upstream, _bank_payer(b2), asset, amount, clock())
        answer = parse(b3.interbank.receive(lie, b2.key.public_key))["message"]
        assert (answer["type"], answer["error"]) == ("refused", error), answer
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)


def test_a_customer_cannot_forward_nor_route_through_its_own_bank(tmp_path: Path) -> None:
    _, (b1, b2, b3), _ = line(tmp_path, 3)
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500)
    forwarding = {**routed(carol, b3, [b2], "bank1.example:USD", 101, 100), "forward": "ab" * 32}
    del forwarding["receive"]
    through_itself = routed(carol, b3, [b1, b2], "bank1.example:USD", 101, 100)
    for body in (forwarding, through_itself):
        with pytest.raises(BadRequestError):
            b1.ledger.submit_one(b1.intent(alice, "payment", body))
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)


def test_a_credited_that_takes_nothing_is_not_applied_and_proves_nothing(tmp_path: Path
                                                                         ) -> None:
    clock, (b1, b2, b3), net, alice, _ = alice_pays_carol(tmp_path, before=_payee_down)
    settle_all(clock, net, rounds=2)
    mid, hold = _waiting_transfer(b1)
    bogus = _bank2_credit(b2, clock(), 1, [hold])
    answer = sign_message(b2.key, "credited", "bank2.example", "bank1.example", clock(),
                          ref=mid, credit=bogus,
                          next={"name": "bank3.example", "key": b3.key.public_key})
    done = b1.interbank.apply_answer(mid, answer)
    assert "does not hold" in done and "proof" not in done
    assert b1.balance(alice, "bank1.example:USD") == (500, 101)
    with b1.ledger.store.read() as r:
        assert r.records("proofs") == [] and r.record("outbox", mid) is not None


def test_a_correspondent_repeats_its_mirrored_answer_byte_for_byte(tmp_path: Path) -> None:
    clock, (b1, b2, _), net, _, _ = alice_pays_carol(tmp_path)
    settle_all(clock, net)
    to_b2 = [m for m in net.sent if m["message"]["to"] == "bank2.example"]
    first = b2.interbank.receive(to_b2[-1], b1.key.public_key)
    assert parse(first)["message"]["type"] == "credited"
    assert all(b2.interbank.receive(m, b1.key.public_key) == first for m in to_b2)


def test_a_credited_naming_another_next_bank_is_not_applied_and_proves_it(tmp_path: Path
                                                                          ) -> None:
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path, before=_payee_down)
    settle_all(clock, net, rounds=2)
    mid, hold = _waiting_transfer(b1)
    _, ours = _waiting_transfer(b2)
    # bank 2 signs "bank9 credited it", under a key of its own making for bank9
    fake = SigningKey.generate()
    onward = sign_entry_as(fake, {
        "chain": carol.chain, "height": 5, "prev": "00" * 31 + "01", "time": clock(),
        "kind": "credit", "intent": None,
        "effects": [{"asset": "bank2.example:USD", "balance": "100", "held": "0"}],
        "evidence": [ours.doc], "validator": fake.public_key})
    credit = _bank2_credit(b2, clock(), 101, [hold, onward])
    answer = sign_message(b2.key, "credited", "bank2.example", "bank1.example", clock(),
                          ref=mid, credit=credit,
                          next={"name": "bank9.example", "key": fake.public_key})
    done = b1.interbank.apply_answer(mid, answer)
    assert "route_unpaid proof kept" in done and "bank9.example" in done
    assert b1.balance(alice, "bank1.example:USD") == (500, 101)
    with b1.ledger.store.read() as r:
        [(_, proof)] = list(r.records("proofs"))
    assert verify_proof(proof).culprit == b2.key.public_key
    b3.up = True  # the honest route still ends
    settle_all(clock, net)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)


def _waiting_transfer(bank: NetBank) -> tuple[str, SignedEntry]:
    """The one transfer in ``bank``'s outbox: its id and the hold it carries."""
    with bank.ledger.store.read() as r:
        [(mid, item)] = list(r.records("outbox"))
    return mid, SignedEntry.from_dict(item["message"]["message"]["hold"])


def _bank2_credit(b2: NetBank, now: int, amount: int, evidence: list[SignedEntry]
                  ) -> SignedEntry:
    """Bank 2, lying: a credit of ``amount`` of bank1's USD on its bank chain, signed and
    never written."""
    chain = b2.ledger.state(b2.ledger.bank_chain())
    return sign_entry_as(b2.key, {
        "chain": chain.chain, "height": chain.height + 1, "prev": chain.head, "time": now,
        "kind": "credit", "intent": None,
        "effects": [{"asset": "bank1.example:USD", "balance": str(amount), "held": "0"}],
        "evidence": [e.doc for e in evidence], "validator": b2.key.public_key})


def test_a_correspondent_s_lies_fill_no_store(tmp_path: Path) -> None:
    clock, (b1, b2, _), net, _, _ = alice_pays_carol(tmp_path, before=_payee_down)
    settle_all(clock, net, rounds=2)
    mid, hold = _waiting_transfer(b1)
    for n in range(105):  # each a new lie: its own answer, its own proof
        lie = sign_message(b2.key, "credited", "bank2.example", "bank1.example", clock() + n,
                           ref=mid, credit=_bank2_credit(b2, clock() + n, 101, [hold]),
                           next={"name": "bank3.example", "key": b2.key.public_key})
        b1.interbank.apply_answer(mid, lie)
    with b1.ledger.store.read() as r:
        assert len(r.records("proofs")) == 100


def test_a_correspondent_that_answers_pending_is_not_a_stuck_peer(tmp_path: Path) -> None:
    """Attack 24, I1: bank2 answers bank1's routed transfer ``pending`` while bank3 is down:
    an answer, not a failure (§11), so bank1's /health does not count bank2 stuck, however
    long the route waits; bank2's own deliveries to bank3, which fail, are."""
    clock, (b1, b2, b3), net, alice, _ = alice_pays_carol(tmp_path, before=_payee_down)
    settle_all(clock, net, rounds=STUCK_ATTEMPTS + 4)
    with b1.ledger.store.read() as r:
        [(_, item)] = list(r.records("outbox"))
        assert item["attempts"] >= STUCK_ATTEMPTS  # asked again and again, answered pending
        assert stuck_peers(r, b1.ledger.clock()) == {}
    with b2.ledger.store.read() as r:
        assert list(stuck_peers(r, b2.ledger.clock())) == ["bank3.example"]
    b3.up = True
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)  # past its deadline: released
    sound([b1, b2, b3])
