"""Payments through correspondent banks between real validators on loopback
(docs/adr/0015-correspondent-routes.md).

Five banks: bank1 - bank2 - bank3 - bank4 in a line (each pins only its neighbours; bank2 and
bank3 are correspondents), and bank5, a correspondent between bank1 and bank3 started with
``--fault keep-routed`` (it answers ``credited`` without handing the payment on). bank3 is
reached by its peers through a fault proxy. After every test, every chain of every bank
verifies offline, every asset sums to zero over all banks, no hold is open, every honest
bank's audit is clean.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from cli.local import LocalBank
from federation.records import verify_well_known
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.intents import sign_intent
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.records import make_record
from tchain.route import Terms, routed_body
from tests.fault_proxy import FaultProxy
from tests.helpers import Customer, sign_entry_as
from tests.realbanks import (
    assert_every_chain_sound,
    balance,
    eventually,
    post_message,
    read,
    register,
    submit,
    totals,
)
from tests.realwallets import customer, ok, run
from validator.operator import deposit, run_audit, set_correspondent
from validator.peers import add_peer

B1, B2, B3, B4, B5, B6 = (f"bank{i}.example" for i in range(1, 7))


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    base = tmp_path_factory.mktemp("route")
    proxy = FaultProxy(seed=18)
    b1 = LocalBank(base / "b1", B1, workers=1, assets=("USD", "GBP"))
    b2 = LocalBank(base / "b2", B2, workers=1)
    b3 = LocalBank(base / "b3", B3, workers=1, public_url=proxy.url)
    b4 = LocalBank(base / "b4", B4, workers=1)
    b5 = LocalBank(base / "b5", B5, workers=1, fault="keep-routed")
    b6 = LocalBank(base / "b6", B6, workers=1, fault="forge-next")
    proxy.start(b3.port)
    KEYS.update({b.name: b.config.signing_key().public_key for b in (b1, b2, b3, b4, b5, b6)})
    with b1, b2, b3, b4, b5, b6:
        for a, b in ((b1, b2), (b2, b3), (b3, b4), (b1, b5), (b5, b3), (b1, b6), (b6, b3)):
            add_peer(a.config, b.url)
            add_peer(b.config, a.url)
        set_correspondent(b2.config, Terms((f"{B1}:USD", f"{B3}:USD"), f"{B2}:USD", 1))
        set_correspondent(b3.config, Terms((f"{B2}:USD", f"{B4}:USD"), f"{B3}:USD", 1))
        set_correspondent(b5.config, Terms((f"{B1}:USD",), f"{B5}:USD", 0))
        set_correspondent(b6.config, Terms((f"{B1}:USD",), f"{B6}:USD", 0))
        yield {"b1": b1, "b2": b2, "b3": b3, "b4": b4, "b5": b5, "b6": b6, "proxy": proxy}


@pytest.fixture(autouse=True)
def every_flow_ends_sound(net):
    """After every test: money neither made nor lost, nothing held, every chain verifies,
    every honest bank's audit is clean (the liar's own books are its own)."""
    yield
    net["proxy"].heal()
    banks = [net[k] for k in ("b1", "b2", "b3", "b4", "b5", "b6")]
    eventually(lambda: all(t == 0 for t in totals(*banks).values()), timeout=30)
    for key in ("b1", "b2", "b3", "b4"):
        assert_every_chain_sound(net[key])
        report = run_audit(net[key].config)
        assert report.ok, report.problems


KEYS: dict[str, str] = {}  # each bank's public key, by name: what a wallet finds and signs


def _routed(payee: Customer, to_bank: str, via: list[str], asset: str, amount: int,
            receive: int) -> dict[str, Any]:
    return {"to": payee.chain, "to_validator": to_bank, "asset": asset, "amount": str(amount),
            "via": via, "receive": str(receive),
            "keys": {name: KEYS[name] for name in (*via, to_bank)}}


def _no_holds(*banks: LocalBank) -> None:
    for bank in banks:
        assert read(bank, lambda r: r.open_holds()) == [], bank.name


def test_three_banks_in_a_line_pay_both_ways(net):
    b1, b2, b3 = net["b1"], net["b2"], net["b3"]
    alice, carol = register(b1, "alice3"), register(b3, "carol3")
    deposit(b1.config, "alice3", "1000", "USD")
    deposit(b3.config, "carol3", "1000", "USD")
    r = submit(b1, alice, "payment", _routed(carol, B3, [B2], f"{B1}:USD", 101, 100))
    assert r.status_code in (201, 202), r.text
    eventually(lambda: balance(b3, carol, f"{B2}:USD") == (100, 0))
    eventually(lambda: balance(b1, alice, f"{B1}:USD") == (899, 0))
    r = submit(b3, carol, "payment", _routed(alice, B1, [B2], f"{B3}:USD", 51, 50))
    assert r.status_code in (201, 202), r.text
    eventually(lambda: balance(b1, alice, f"{B2}:USD") == (50, 0))
    eventually(lambda: balance(b3, carol, f"{B3}:USD") == (949, 0))
    # the correspondent's books: what it holds of each side's IOU, and owes in its own
    positions = {(p, a): pos.held for p, a, pos in read(b2, lambda r: r.positions())}
    assert positions[(B1, f"{B1}:USD")] == -101 and positions[(B3, f"{B3}:USD")] == -51
    eventually(lambda: _no_holds(b1, b2, b3))


def test_four_banks_in_a_line_pay_both_ways(net):
    b1, b4 = net["b1"], net["b4"]
    alice, dave = register(b1, "alice4"), register(b4, "dave4")
    deposit(b1.config, "alice4", "1000", "USD")
    r = submit(b1, alice, "payment", _routed(dave, B4, [B2, B3], f"{B1}:USD", 102, 100))
    assert r.status_code in (201, 202), r.text
    eventually(lambda: balance(b4, dave, f"{B3}:USD") == (100, 0))
    eventually(lambda: balance(b1, alice, f"{B1}:USD") == (898, 0))
    deposit(b4.config, "dave4", "100", "USD")
    r = submit(b4, dave, "payment", _routed(alice, B1, [B3, B2], f"{B4}:USD", 12, 10))
    assert r.status_code in (201, 202), r.text
    eventually(lambda: balance(b1, alice, f"{B2}:USD") == (10, 0))
    eventually(lambda: balance(b4, dave, f"{B4}:USD") == (88, 0))
    eventually(lambda: _no_holds(net["b1"], net["b2"], net["b3"], b4))


def test_refusals_at_the_payee_bank_and_at_a_correspondent_release_every_hold(net):
    b1 = net["b1"]
    alice = register(b1, "alice5")
    deposit(b1.config, "alice5", "1000", "USD")
    deposit(b1.config, "alice5", "1000", "GBP")
    ghost = Customer("ghost", chain="cd" * 32)
    submit(b1, alice, "payment", _routed(ghost, B3, [B2], f"{B1}:USD", 101, 100))
    submit(b1, alice, "payment", _routed(ghost, B3, [B2], f"{B1}:GBP", 101, 100))
    eventually(lambda: balance(b1, alice, f"{B1}:USD") == (1000, 0))
    eventually(lambda: balance(b1, alice, f"{B1}:GBP") == (1000, 0))
    eventually(lambda: _no_holds(b1, net["b2"], net["b3"]))
    reasons = sorted(f["reason"] for _, f in read(b1, lambda r: r.records("flows"))
                     if f["chain"] == alice.chain)
    assert "takes bank1.example:USD, bank3.example:USD at par, not bank1.example:GBP" in \
        reasons[0] + reasons[1]
    assert "bank3.example: " in reasons[0] + reasons[1]  # the payee's bank's own refusal


def test_payee_bank_down_mid_route_then_back(net):
    b1, b2, b3 = net["b1"], net["b2"], net["b3"]
    alice, carol = register(b1, "alice6"), register(b3, "carol6")
    deposit(b1.config, "alice6", "1000", "USD")
    b3.stop()
    try:
        submit(b1, alice, "payment", _routed(carol, B3, [B2], f"{B1}:USD", 101, 100))
        eventually(lambda: len(read(b2, lambda r: r.open_holds())) == 1)
        assert balance(b1, alice, f"{B1}:USD") == (1000, 101)  # held, waiting
    finally:
        b3.start()
    eventually(lambda: balance(b3, carol, f"{B2}:USD") == (100, 0))
    eventually(lambda: balance(b1, alice, f"{B1}:USD") == (899, 0))
    eventually(lambda: _no_holds(b1, b2, b3))


def test_a_lost_answer_ends_alike_everywhere(net):
    b1, b2, b3, proxy = net["b1"], net["b2"], net["b3"], net["proxy"]
    alice, carol = register(b1, "alice7"), register(b3, "carol7")
    deposit(b1.config, "alice7", "1000", "USD")
    proxy.only = b'"transfer"'
    proxy.set(lose_reply=1.0)
    try:
        submit(b1, alice, "payment", _routed(carol, B3, [B2], f"{B1}:USD", 101, 100))
        eventually(lambda: balance(b3, carol, f"{B2}:USD") == (100, 0))  # decided, unheard
        assert balance(b1, alice, f"{B1}:USD") == (1000, 101)
    finally:
        proxy.heal()
        proxy.only = None
    assert proxy.counts["lose_reply"] >= 1
    eventually(lambda: balance(b1, alice, f"{B1}:USD") == (899, 0))
    eventually(lambda: _no_holds(b1, b2, b3))


def test_a_correspondent_cannot_hand_on_a_third_bank_s_iou_it_does_not_hold(net):
    b1, b2, b3 = net["b1"], net["b2"], net["b3"]
    alice, carol = register(b1, "alice9"), register(b3, "carol9")
    deposit(b1.config, "alice9", "1000", "GBP")
    # a payment bank2 honestly refuses (it takes no GBP): the lie below is all bank3 sees of it
    # (handing on bank3's GBP: a route changes no asset code, attack 13)
    doc = sign_intent(alice.key, "payment", alice.chain, 1, now_ms(),
                      _routed(carol, B3, [B2], f"{B1}:GBP", 101, 100))
    hold = _hold_of(b1, alice, doc)
    key = b2.config.signing_key()
    chain = read(b2, lambda r: r.state(r.meta("bank_chain")))
    body = routed_body(hold)
    assert body is not None
    now = now_ms()
    intent = sign_intent(key, "payment", chain.chain, chain.seq + 1, now, {
        "to": body.to, "to_validator": B3, "asset": f"{B3}:GBP", "amount": "100",
        "forward": hold.id, "via": []})
    lie = sign_entry_as(key, {
        "chain": chain.chain, "height": chain.height + 1, "prev": chain.head, "time": now,
        "kind": "payment", "intent": intent,
        "effects": [{"asset": f"{B3}:GBP", "balance": "0", "held": "100"}],
        "evidence": [hold.doc], "validator": key.public_key})
    payer = make_record(key, address=B2, owner=chain.owner, chain=chain.chain, validator=B2)
    message = sign_message(key, "transfer", B2, B3, now, hold=lie, payer=payer,
                           deadline=now + 30_000, kyc_required=False)
    r = post_message(b3, key, message)
    assert r.status_code == 200, r.text
    answer = r.json()["message"]
    assert (answer["type"], answer["error"]) == ("refused", "position_exceeded")
    assert balance(b3, carol, f"{B3}:GBP") == (0, 0)
    eventually(lambda: _no_holds(b1, b2, b3))


def _hold_of(b1: LocalBank, alice: Customer, doc: dict[str, Any]) -> SignedEntry:
    """Alice's routed hold, signed by bank1, as bank2 gets it."""
    r = requests.post(b1.url + "/v1/intents", data=canonical(doc), timeout=30)
    assert r.status_code in (201, 202), r.text
    alice.seq += 1
    return SignedEntry.from_dict(r.json()["entries"][0])


def test_the_cli_finds_shows_and_pays_a_route(net, tmp_path):
    b1, b3, b4 = net["b1"], net["b3"], net["b4"]
    ann = customer(tmp_path, "ann", b1, "1000")
    customer(tmp_path, "cat", b3)
    customer(tmp_path, "dan", b4)
    # shortest, then cheapest: bank5 keeps no fee
    shown = json.loads(ok("pay", f"cat*{B3}", "100", f"{B1}:USD", "--dry-run", "--json",
                          wallet=ann).stdout)
    assert shown["via"] == [B5] and shown["pays"] == "100"
    four = ok("pay", f"dan*{B4}", "100", f"{B1}:USD", "--dry-run", wallet=ann).stdout
    assert four.strip() == (f"route via {B2} -> {B3} -> {B4}: you pay 102 {B1}:USD, the payee "
                            f"gets 100 {B3}:USD (fees 2)")
    assert read(b1, lambda r: r.state(r.chain_by_name("ann")).seq) == 0  # nothing signed
    paid = ok("pay", f"cat*{B3}", "100", f"{B1}:USD", "--via", B2, wallet=ann).stdout
    assert f"paid 101 {B1}:USD to cat*{B3} via {B2}" in paid
    eventually(lambda: read(b1, lambda r: r.state(r.chain_by_name("ann")).balances[
        f"{B1}:USD"].held) == 0)
    assert read(b3, lambda r: r.state(r.chain_by_name("cat")).balances[f"{B2}:USD"]
                .balance) == 100
    ok("pay", f"dan*{B4}", "100", f"{B1}:USD", wallet=ann)
    books = ok("validator", "audit", "--data", str(net["b2"].data)).stdout
    assert "positions with peers" in books
    assert any(line.split()[:2] == [B1, f"{B1}:USD"] for line in books.splitlines())
    eventually(lambda: read(b4, lambda r: r.state(r.chain_by_name("dan")).balances.get(
        f"{B3}:USD")) is not None)


def test_the_cli_says_why_a_route_is_refused_in_one_sentence(net, tmp_path):
    ann = customer(tmp_path, "ann2", net["b1"], "1000")
    for args, said in (
            ((f"nobody*{B3}", "10", f"{B1}:GBP"), "no route from bank1.example to "
                                                  "bank3.example hands on bank1.example:GBP"),
            ((f"nobody*{B3}", "10", f"{B1}:GBP", "--via", B2), f"{B2} does not hand on "
                                                              f"{B1}:GBP"),
            ((f"nobody*{B4}", "10", f"{B1}:USD", "--via", B3), f"{B3} is not a peer of {B1}")):
        refused = run("pay", *args, "--dry-run", wallet=ann)
        assert refused.exit_code == 1, refused.stderr
        [line] = refused.stderr.splitlines()
        assert said in line, line


def test_an_operator_publishes_and_withdraws_correspondent_terms(net):
    b4 = net["b4"]
    ok("validator", "correspond", "--data", str(b4.data), "--accept", f"{B3}:USD", "--pay",
       f"{B4}:USD", "--fee", "2", "--limit", "5000")
    document = requests.get(b4.url + "/.well-known/tchain.json", timeout=10).json()
    assert document["document"]["correspondent"] == {"accept": [f"{B3}:USD"],
                                                     "pay": f"{B4}:USD", "fee": "2",
                                                     "limit": "5000"}
    verify_well_known(document)
    ok("validator", "correspond", "--data", str(b4.data), "--stop")
    document = requests.get(b4.url + "/.well-known/tchain.json", timeout=10).json()
    assert "correspondent" not in document["document"]
    bad = run("validator", "correspond", "--data", str(b4.data), "--accept", "nope")
    assert bad.exit_code == 2


def test_a_correspondent_that_keeps_the_money_leaves_a_proof(net, tmp_path):
    b1, b3, b5 = net["b1"], net["b3"], net["b5"]
    alice, carol = register(b1, "alice8"), register(b3, "carol8")
    deposit(b1.config, "alice8", "1000", "USD")
    submit(b1, alice, "payment", _routed(carol, B3, [B5], f"{B1}:USD", 100, 100))

    found = eventually(lambda: _route_unpaid(b1, B5))
    shown = verify_proof(found)
    assert shown.culprit == b5.config.signing_key().public_key
    (tmp_path / "proof.json").write_text(json.dumps(found))
    said = ok("proof", "verify", str(tmp_path / "proof.json")).stdout
    assert "valid" in said and f"{B5} took 100 {B1}:USD" in said
    assert balance(b1, alice, f"{B1}:USD") == (1000, 100)  # held: not settled on a lie
    assert balance(b3, carol, f"{B5}:USD") == (0, 0)
    # the hold stays open, visible: releasing it is the operators' decision, not a timer's
    # (so this test and the next run last)
    assert len(read(b1, lambda r: r.open_holds())) == 1


def _route_unpaid(bank: LocalBank, culprit: str) -> dict[str, Any]:
    proofs = [p for _, p in read(bank, lambda r: r.records("proofs"))
              if p["type"] == "route_unpaid" and p["answer"]["message"]["from"] == culprit]
    assert proofs
    return proofs[0]


def test_a_correspondent_that_forges_the_next_bank_s_credit_under_its_own_key_is_proven(
        net, tmp_path):
    """Attack 13's Finding 3: a correspondent names a key of its own making for the next bank
    and forges that bank's credit under it. The payer signed the next bank's key, so bank1
    does not settle, and the proof verifies offline."""
    b1, b3, b6 = net["b1"], net["b3"], net["b6"]
    alice, carol = register(b1, "alice20"), register(b3, "carol20")
    deposit(b1.config, "alice20", "1000", "USD")
    submit(b1, alice, "payment", _routed(carol, B3, [B6], f"{B1}:USD", 100, 100))
    found = eventually(lambda: _route_unpaid(b1, B6))
    forged = found["answer"]["message"]["next"]
    assert forged["name"] == B3 and forged["key"] != KEYS[B3]
    (tmp_path / "proof.json").write_text(json.dumps(found))
    said = ok("proof", "verify", str(tmp_path / "proof.json")).stdout
    assert "valid" in said and f"{B6} took 100 {B1}:USD" in said and "did not sign" in said
    assert verify_proof(found).culprit == b6.config.signing_key().public_key
    assert balance(b1, alice, f"{B1}:USD") == (1000, 100)  # held: not settled on a lie
    assert balance(b3, carol, f"{B6}:USD") == (0, 0)
    assert len(read(b1, lambda r: r.open_holds())) == 2  # this one and the test's before
