"""The outside attack on correspondent routes (attack 13; docs/adr/0015, "Update (attack
13)"), in process: a tester holding bank2's key, banks in a line. Each test is an attack that
worked against the first version of routes; after each, money is neither made nor lost except
the IOUs the liar signed (its liability, proven by its own signature), no hold stays open, and
every chain verifies offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tchain.encoding import parse
from tchain.errors import EncodingError, RouteRefusedError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.records import make_record
from tchain.route import Terms, routed_body
from tchain.verify import verify_chain
from tests.helpers import Clock, sign_entry_as
from tests.interbank_net import NetBank, pin, totals
from tests.routenet import alice_pays_carol, line, make_correspondent, routed, settle_all, sound
from validator.audit import audit

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"


def _waiting_transfer(bank: NetBank) -> tuple[str, SignedEntry]:
    """The one transfer in ``bank``'s outbox: its id and the hold it carries."""
    with bank.ledger.store.read() as r:
        [(mid, item)] = list(r.records("outbox"))
    return mid, SignedEntry.from_dict(item["message"]["message"]["hold"])


def _signed_hold(key: SigningKey, chain: str, height: int, prev: str, now: int,
                 fields: dict[str, Any], evidence: list[SignedEntry],
                 intent_key: SigningKey | None = None) -> SignedEntry:
    """A payment hold on ``chain`` signed by ``key`` (its intent by ``intent_key``, else by
    ``key``: a bank chain's owner is its bank), holding what it pays."""
    intent = sign_intent(intent_key or key, "payment", chain, height, now, fields)
    return sign_entry_as(key, {
        "chain": chain, "height": height, "prev": prev, "time": now, "kind": "payment",
        "intent": intent,
        "effects": [{"asset": fields["asset"], "balance": "0", "held": fields["amount"]}],
        "evidence": [e.doc for e in evidence], "validator": key.public_key})


def _bank2_forward(b2: NetBank, upstream: SignedEntry, asset: str, amount: int, now: int, *,
                   chain: str | None = None, intent_key: SigningKey | None = None
                   ) -> SignedEntry:
    """Bank 2's hold forwarding ``upstream``, signed with its key and never written in its
    books (on its bank chain unless ``chain``)."""
    body = routed_body(upstream)
    assert body is not None and body.route is not None
    state = b2.ledger.state(chain or b2.ledger.bank_chain())
    return _signed_hold(b2.key, state.chain, state.height + 1, state.head, now, {
        "to": body.to, "to_validator": body.to_validator, "asset": asset, "amount": str(amount),
        "forward": upstream.id, "via": list(body.route.via[1:])}, [upstream], intent_key)


def _send(b2: NetBank, b3: NetBank, hold: SignedEntry, now: int,
          payer: dict[str, Any] | None = None, deadline: int | None = None) -> dict[str, Any]:
    """Bank 2's transfer of ``hold`` to bank 3, and bank 3's answer."""
    if payer is None:
        chain = b2.ledger.state(b2.ledger.bank_chain())
        payer = make_record(b2.key, address=chain.address, owner=chain.owner,
                            chain=chain.chain, validator=b2.name)
    message = sign_message(b2.key, "transfer", B2, B3, now, hold=hold, payer=payer,
                           deadline=now + 10_000 if deadline is None else deadline,
                           kyc_required=False)
    return dict(parse(b3.interbank.receive(message, b2.key.public_key))["message"])


def _only_the_liar_s_iou(banks: list[NetBank], phantom: dict[str, int]) -> None:
    """Every asset sums to zero over every bank but the IOUs bank2 signed and never wrote
    (its liability, in its own signed entries); every hold closed, every chain verifies."""
    assert {a: t for a, t in totals(*banks).items() if t} == phantom
    for bank in banks:
        report = audit(bank.ledger)
        assert report.ok, report.problems
        with bank.ledger.store.read() as r:
            assert r.open_holds() == [], bank.name
            for chain in r.chain_ids(None, 10**6):
                entries = [SignedEntry.from_bytes(e) for e in r.entries(chain, 0, 10**6)]
                verify_chain(entries, bank.key.public_key, bank.name, chain)


def _proven(bank: NetBank, culprit: NetBank) -> None:
    """``bank`` kept one misconduct proof, against ``culprit``, that verifies offline."""
    with bank.ledger.store.read() as r:
        proofs = [verify_proof(p) for _, p in r.records("proofs")]
    assert [(p.type, p.culprit) for p in proofs] == [("misconduct", culprit.key.public_key)]


# --- Finding 3: the payer signs the keys of its route ------------------------------------

def test_a_correspondent_naming_a_key_of_its_own_for_the_next_bank_leaves_a_proof(
        tmp_path: Path) -> None:
    def payee_down(banks: list[NetBank]) -> None:
        banks[2].up = False
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path, before=payee_down)
    settle_all(clock, net, rounds=2)
    mid, hold = _waiting_transfer(b1)
    _, ours = _waiting_transfer(b2)
    fake = SigningKey.generate()  # bank2's own key "for bank3", and bank3's credit under it
    onward = sign_entry_as(fake, {
        "chain": carol.chain, "height": 5, "prev": "00" * 31 + "01", "time": clock(),
        "kind": "credit", "intent": None,
        "effects": [{"asset": "bank2.example:USD", "balance": "100", "held": "0"}],
        "evidence": [ours.doc], "validator": fake.public_key})
    chain = b2.ledger.state(b2.ledger.bank_chain())
    credit = sign_entry_as(b2.key, {
        "chain": chain.chain, "height": chain.height + 1, "prev": chain.head, "time": clock(),
        "kind": "credit", "intent": None,
        "effects": [{"asset": "bank1.example:USD", "balance": "101", "held": "0"}],
        "evidence": [hold.doc, onward.doc], "validator": b2.key.public_key})
    answer = sign_message(b2.key, "credited", B2, B1, clock(), ref=mid, credit=credit,
                          next={"name": B3, "key": fake.public_key})
    done = b1.interbank.apply_answer(mid, answer)
    assert "route_unpaid proof kept" in done and "did not sign" in done
    assert b1.balance(alice, "bank1.example:USD") == (500, 101)  # not settled on a lie
    with b1.ledger.store.read() as r:
        [(_, proof)] = list(r.records("proofs"))
    shown = verify_proof(proof)  # offline: the payer's signed intent names bank3's key
    assert shown.type == "route_unpaid" and shown.culprit == b2.key.public_key
    b3.up = True  # the honest route still ends
    settle_all(clock, net)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    sound([b1, b2, b3])


def test_a_payer_key_its_bank_does_not_pin_holds_nothing(tmp_path: Path) -> None:
    _, (b1, b2, b3), _ = line(tmp_path, 3)
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500)
    body = routed(carol, b3, [b2], "bank1.example:USD", 101, 100)
    body["keys"][B2] = SigningKey.generate().public_key  # a lying document the wallet met
    with pytest.raises(RouteRefusedError, match=r"another key for bank2\.example"):
        b1.ledger.submit_one(b1.intent(alice, "payment", body))
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)


def test_a_correspondent_that_pins_another_key_for_the_next_bank_refuses_and_all_release(
        tmp_path: Path) -> None:
    clock, (b1, b2, b3), net = line(tmp_path, 3)
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500)
    body = routed(carol, b3, [b2], "bank1.example:USD", 101, 100)
    body["keys"][B3] = SigningKey.generate().public_key
    b1.submit(alice, "payment", body)
    settle_all(clock, net)
    answers = [parse(a)["message"] for _, a in net.delivered]
    assert [(a["type"], a.get("error")) for a in answers] == [("refused", "route_refused")]
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    sound([b1, b2, b3])


def test_a_forwarding_hold_signed_by_a_key_the_payer_did_not_sign_is_misconduct(
        tmp_path: Path) -> None:
    clock, (b1, b2, _), _, _, _ = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    # a bank3 that pins bank2, but not the bank3 whose key the payer signed
    liar = NetBank(tmp_path / "b3x", B3, clock)
    pin(b2, liar)
    answer = _send(b2, liar, _bank2_forward(b2, upstream, "bank2.example:USD", 100, clock()),
                   clock())
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert "the payer signed" in answer["reason"]


# --- Finding 1: another hold of an answered payment is a conflict ------------------------

def test_a_hold_forged_ahead_of_the_correspondent_s_is_refused_conflict_and_all_close(
        tmp_path: Path) -> None:
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    # the tester, with bank2's key, hands bank3 the payment before the real bank2 does
    first = _send(b2, b3, _bank2_forward(b2, upstream, "bank2.example:USD", 100, clock() - 5),
                  clock())  # (dated apart: the same bytes as the real one would be its hold)
    assert first["type"] == "credited"
    settle_all(clock, net)  # the real bank2's hold: conflict, released, refused upstream
    replies = [parse(a)["message"] for _, a in net.delivered]
    assert [(a["type"], a.get("error")) for a in replies] == [
        ("pending", None), ("refused", "conflict"), ("refused", "conflict")]
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)  # the liar's IOU, its own word
    _only_the_liar_s_iou([b1, b2, b3], {"bank2.example:USD": 100})


def test_a_refused_hold_forged_ahead_of_the_correspondent_s_is_a_conflict_and_all_close(
        tmp_path: Path) -> None:
    """Attack 15, Finding 1: with bank2's key, the tester handed bank3 the payment first,
    its deadline already past; bank3 refused it ``expired``, kept that refusal, and answered
    the real bank2's transfer with those very bytes, whose ``ref`` is the forged message's:
    bank2 could not take that answer, and its hold and the payer's stayed open for ever.
    Another hold of a payment refused is a conflict too, answered to its own message."""
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    first = _send(b2, b3, _bank2_forward(b2, upstream, "bank2.example:USD", 100, clock() - 5),
                  clock(), deadline=clock() - 1)
    assert (first["type"], first["error"]) == ("refused", "expired"), first
    settle_all(clock, net)
    replies = [parse(a)["message"] for _, a in net.delivered]
    assert [(a["type"], a.get("error")) for a in replies] == [
        ("pending", None), ("refused", "conflict"), ("refused", "conflict")]
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)
    _only_the_liar_s_iou([b1, b2, b3], {})


def test_the_real_hold_sent_ahead_in_a_message_of_its_own_still_answers_its_bank(
        tmp_path: Path) -> None:
    """Attack 17, Finding 1: with bank2's key, the tester predicted the very hold the real
    bank2 would send (all of it is known but one time) and sent it to bank3 first, in a
    message of its own with its deadline past. bank3 refused that message ``expired``, and
    answered the real bank2's transfer of the same hold with those kept bytes, whose ``ref``
    is the tester's message: bank2 could not take them, so its hold and alice's stayed open
    for ever. The same decision now answers every message of that hold, under its own
    ``ref``."""
    clock, (b1, b2, b3), net, _, carol = alice_pays_carol(tmp_path)
    _waiting_transfer(b1)
    settle_all(clock, net)  # (bank2's own transfer is sent, and answered: credited)
    sent = [m for m in net.sent if m["message"]["to"] == B3][-1]
    real = SignedEntry.from_dict(sent["message"]["hold"])
    again = _send(b2, b3, real, clock() + 5)  # the same hold, in another message
    first = parse(b3.interbank.receive(sent, b2.key.public_key))["message"]
    assert again["type"] == first["type"] == "credited"
    assert again["credit"] == first["credit"]  # one decision, one credit
    assert again["ref"] != first["ref"]  # each message answered as itself
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    sound([b1, b2, b3])


def test_the_real_hold_refused_ahead_in_a_message_of_its_own_closes_every_hold(
        tmp_path: Path) -> None:
    """Attack 17, Finding 1's other path: the predicted hold, sent first with its deadline
    past, is refused ``expired``; the real bank2's transfer of it gets that decision under its
    own ``ref``, so bank2 releases its hold and answers bank1 ``refused``: every hold closes."""
    clock, (b1, b2, b3), net, alice, carol = alice_pays_carol(tmp_path)
    to_b2, _ = _waiting_transfer(b1)
    net.deliver(b1, to_b2)  # bank2 holds and queues its transfer to bank3, not sent yet
    _, hold = _waiting_transfer(b2)
    early = _send(b2, b3, hold, clock(), deadline=clock() - 1)
    assert (early["type"], early["error"]) == ("refused", "expired"), early
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (500, 0)
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)
    _only_the_liar_s_iou([b1, b2, b3], {})


def test_another_hold_of_a_credited_payment_is_refused_conflict_the_same_gets_its_answer(
        tmp_path: Path) -> None:
    clock, (b1, b2, b3), net, _, carol = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    settle_all(clock, net)
    sent = [m for m in net.sent if m["message"]["to"] == B3][-1]
    kept = b3.interbank.receive(sent, b2.key.public_key)
    real = SignedEntry.from_dict(sent["message"]["hold"])
    again = _send(b2, b3, real, clock() + 5)  # the same hold, re-wrapped
    assert parse(kept)["message"]["type"] == "credited"
    assert (again["type"], again["credit"]) == ("credited", parse(kept)["message"]["credit"])
    other = _send(b2, b3, _bank2_forward(b2, upstream, "bank2.example:USD", 100, clock()),
                  clock())
    assert (other["type"], other["error"]) == ("refused", "conflict"), other
    lie = _send(b2, b3, _bank2_forward(b2, upstream, "bank2.example:USD", 102, clock()),
                clock())  # another hold that is a lie too (more than it got): misconduct
    assert (lie["type"], lie["error"]) == ("refused", "bad_request"), lie
    _proven(b3, b2)  # checked before the kept answer is looked up, and proven offline
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    sound([b1, b2, b3])


# --- Finding 2: a route changes no asset code --------------------------------------------

def test_a_last_hop_that_changes_the_asset_code_is_misconduct(tmp_path: Path) -> None:
    clock, (b1, b2, b3), _, _, carol = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    answer = _send(b2, b3, _bank2_forward(b2, upstream, "bank2.example:JPY", 100, clock()),
                   clock())
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert "changes no asset code" in answer["reason"]
    assert b3.balance(carol, "bank2.example:JPY") == (0, 0)
    _proven(b3, b2)


# --- Findings 4 and 5: the sender's own bank chain, under its own key ----------------------

def test_a_last_hop_that_pays_a_customer_s_iou_of_the_same_code_is_misconduct(
        tmp_path: Path) -> None:
    """Attack 15, Finding 2: bank2 paid the route with 100 ``bob*bank2.example:USD``, an IOU
    of its customer bob that bob never issued, and bank3 credited carol with it."""
    clock, (b1, b2, b3), _, _, carol = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    bob = f"bob*{B2}:USD"
    answer = _send(b2, b3, _bank2_forward(b2, upstream, bob, 100, clock()), clock())
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert "a customer's asset" in answer["reason"]
    assert b3.balance(carol, bob) == (0, 0)
    _proven(b3, b2)


def test_a_forwarding_intent_under_a_key_the_payer_record_names_is_misconduct(
        tmp_path: Path) -> None:
    clock, (b1, b2, b3), _, _, carol = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    other = SigningKey.generate()
    chain = b2.ledger.state(b2.ledger.bank_chain())
    record = make_record(b2.key, address=chain.address, owner=other.public_key,
                         chain=chain.chain, validator=B2)
    hold = _bank2_forward(b2, upstream, "bank2.example:USD", 100, clock(), intent_key=other)
    answer = _send(b2, b3, hold, clock(), payer=record)
    assert (answer["type"], answer["error"]) == ("refused", "bad_signature"), answer
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)


def test_a_forwarding_hold_on_a_customer_s_chain_is_misconduct(tmp_path: Path) -> None:
    clock, (b1, b2, b3), _, _, carol = alice_pays_carol(tmp_path)
    _, upstream = _waiting_transfer(b1)
    bob = b2.join("bob")
    record = make_record(b2.key, address=B2, owner=b2.key.public_key, chain=bob.chain,
                         validator=B2)  # bank2 says bob's chain is its own
    hold = _bank2_forward(b2, upstream, "bank2.example:USD", 100, clock(), chain=bob.chain)
    answer = _send(b2, b3, hold, clock(), payer=record)
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert "own bank chain" in answer["reason"]
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)


# --- Finding 6: no third bank's IOU on any hop ---------------------------------------------

def _upstream_hops(tmp_path: Path, *, payer_asset: str = "x0.example:USD",
                   hop_asset: str = "x1.example:USD", flaw: str | None = None
                   ) -> dict[str, Any]:
    """A route x0 → x1 → bank2 → bank3 (carol), its first two banks the tester's own keys
    (bank3 sees them only nested), the payer's hold in ``payer_asset``, x1's in
    ``hop_asset``, and the payer's hold broken by ``flaw``: bank2's transfer of it, bank3's
    answer."""
    clock = Clock()
    b2 = NetBank(tmp_path / "b2", B2, clock)
    b3 = NetBank(tmp_path / "b3", B3, clock)
    pin(b2, b3)
    carol = b3.join("carol")
    x0, x1, payer = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    now = clock()
    fields = {"to": carol.chain, "to_validator": B3, "asset": payer_asset, "amount": "102",
              "via": ["x1.example", B2], "receive": "100",
              "keys": {"x1.example": x1.public_key, B2: b2.key.public_key, B3: b3.key.public_key}}
    first = _signed_hold(x0, "a1" * 32, 2, "00" * 32, now, fields, [], intent_key=payer)
    entry = dict(first.doc["entry"])
    if flaw == "intent_chain":  # the payer's intent is for another chain than its hold's
        entry["intent"] = sign_intent(payer, "payment", "a3" * 32, 2, now, fields)
    elif flaw == "evidence":  # a payer's hold carries none
        entry["evidence"] = [_signed_hold(x0, "a4" * 32, 1, "00" * 32, now, fields, [],
                                          intent_key=payer).doc]
    first = sign_entry_as(x0, entry)
    hop = _signed_hold(x1, "a2" * 32, 2, "00" * 32, now, {
        "to": carol.chain, "to_validator": B3, "asset": hop_asset, "amount": "101",
        "forward": first.id, "via": [B2]}, [first])
    answer = _send(b2, b3, _bank2_forward(b2, hop, "bank2.example:USD", 100, now), now)
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)
    _proven(b3, b2)  # the hops are in the message: proven offline
    sound([b3])
    return answer


def test_a_third_bank_s_iou_on_a_hop_upstream_of_the_sender_is_misconduct(tmp_path: Path
                                                                          ) -> None:
    answer = _upstream_hops(tmp_path, hop_asset="x9.example:USD")
    assert (answer["type"], answer["error"]) == ("refused", "foreign_asset"), answer


def test_a_payer_hold_upstream_in_a_customer_s_iou_is_misconduct(tmp_path: Path) -> None:
    """Attack 17, Finding 3: the payer's hold nested upstream held ``cust*x0.example:USD``,
    which the liar x1 took and handed on, and bank2 paid carol for it. Every hold on a route
    moves a bank's IOU: a payer's bank holds none of a customer's for a route."""
    answer = _upstream_hops(tmp_path, payer_asset="cust*x0.example:USD")
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert "a customer's asset" in answer["reason"]


@pytest.mark.parametrize("flaw", ["intent_chain", "evidence"])
def test_a_malformed_payer_hold_nested_upstream_is_misconduct(tmp_path: Path, flaw: str
                                                              ) -> None:
    """Attack 15, left open: a payer's hold nested upstream whose intent names another chain,
    or which carries evidence (a payer's hold has none), was carried on."""
    answer = _upstream_hops(tmp_path, flaw=flaw)
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer


def test_a_payer_s_bank_holds_no_customer_s_iou_for_a_route(tmp_path: Path) -> None:
    _, (b1, b2, b3), _ = line(tmp_path, 3)
    alice, carol = b1.join("alice"), b3.join("carol")
    points = f"alice*{B1}:USD"
    with pytest.raises(RouteRefusedError, match="a customer's"):
        b1.submit(alice, "payment", routed(carol, b3, [b2], points, 11, 10))
    with b1.ledger.store.read() as r:
        assert r.open_holds() == []


def test_correspondent_terms_name_banks_ious_only() -> None:
    with pytest.raises(EncodingError, match="banks' IOUs"):
        Terms.from_dict({"accept": ["bob*bank1.example:USD"], "pay": "bank2.example:USD",
                         "fee": "1"})
    with pytest.raises(EncodingError, match="banks' IOUs"):
        Terms.from_dict({"accept": ["bank1.example:USD"], "pay": "bob*bank2.example:USD",
                         "fee": "1"})


# --- Finding 7: nested dates, and a correspondent's limit per peer ---------------------------

def test_a_payer_hold_nested_and_dated_ahead_is_refused(tmp_path: Path) -> None:
    clock, (b1, b2, b3), _, alice, carol = alice_pays_carol(tmp_path)
    intent = b1.intent(alice, "payment", routed(carol, b3, [b2], "bank1.example:USD", 101, 100))
    ahead = clock() + 3_600_000  # a bank1 key of the tester's making dates the hold an hour on
    fake = SigningKey.generate()
    hold = sign_entry_as(fake, {
        "chain": alice.chain, "height": 3, "prev": "00" * 32, "time": ahead, "kind": "payment",
        "intent": intent,
        "effects": [{"asset": "bank1.example:USD", "balance": "0", "held": "101"}],
        "evidence": [], "validator": fake.public_key})
    answer = _send(b2, b3, _bank2_forward(b2, hold, "bank2.example:USD", 100, clock()), clock())
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert "dated" in answer["reason"]
    assert b3.balance(carol, "bank2.example:USD") == (0, 0)


def test_a_correspondent_holds_no_more_of_a_peer_s_iou_than_its_limit(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net = line(tmp_path, 3)
    make_correspondent(b2, accept=("bank1.example:USD",), pay="bank2.example:USD", fee=1,
                       limit=150)
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500)
    for _ in range(2):
        b1.submit(alice, "payment", routed(carol, b3, [b2], "bank1.example:USD", 101, 100))
        settle_all(clock, net)
    refusal = [parse(a)["message"] for _, a in net.delivered][-1]
    assert (refusal["type"], refusal["error"]) == ("refused", "route_refused"), refusal
    assert "at most 150" in refusal["reason"]
    assert b1.balance(alice, "bank1.example:USD") == (399, 0)  # one paid, one released
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    sound([b1, b2, b3])
