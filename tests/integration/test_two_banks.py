"""Cross-bank flows between real validators on loopback (LMDB, the outbox sender).

Three banks: bank1 and bank2 honest, bank3 started with ``--fault skip-settle``. After every
test each asset that no cheat touched sums to zero over all chains of all banks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

import pytest
import requests

from cli.local import LocalBank
from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedEntry
from tchain.proofs import unsettled, verify_proof
from tests import realbanks
from tests.helpers import Customer, snapshot
from tests.realbanks import (
    assert_chain_verifies,
    balance,
    eventually,
    post_message,
    read,
    register,
    snapshot_from,
    store_of,
    submit,
    totals,
)
from validator.operator import add_regulator, deposit, run_audit
from validator.peers import add_peer

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"
USD, GBP, EUR, CHEAT = f"{B1}:USD", f"{B1}:GBP", f"{B2}:EUR", f"{B3}:USD"
DEADLINE = 4  # seconds, the banks' --settle-deadline


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    base = tmp_path_factory.mktemp("banks")
    b1 = LocalBank(base / "b1", B1, assets=("USD", "GBP"), settle_deadline=DEADLINE)
    b2 = LocalBank(base / "b2", B2, assets=("EUR",), settle_deadline=DEADLINE)
    b3 = LocalBank(base / "b3", B3, assets=("USD",), settle_deadline=DEADLINE,
                   fault="skip-settle")
    with b1, b2, b3:
        for a, b in ((b1, b2), (b2, b1), (b1, b3), (b3, b1)):
            add_peer(a.config, b.url)
        yield b1, b2, b3


def pay(bank, payer, payee, to_bank, amount, asset=USD):
    return realbanks.pay(bank, payer, payee, to_bank, amount, asset)


@pytest.fixture(autouse=True)
def value_is_conserved(banks):
    """After every test: each asset sums to zero over all chains of all banks, once what the
    non-settlement proofs document is counted (only the cheating bank3 leaves any)."""
    yield

    def balanced() -> bool:
        documented = unsettled(read(banks[0], lambda r: [p for _, p in r.records("proofs")]))
        everything = totals(*banks)
        return all(t + documented.get(a, 0) == 0 for a, t in everything.items())

    eventually(balanced)


def test_cross_bank_payment_is_signed_by_both_banks(banks):
    b1, b2, _ = banks
    alice, bob = register(b1, "alice"), register(b2, "bob")
    deposit(b1.config, "alice", "10000", "USD")
    r = pay(b1, alice, bob, B2, 2500)
    assert r.status_code == 201, r.text
    assert r.json()["flow"]["state"] == "settled"
    hold, settle = (SignedEntry.from_dict(e) for e in r.json()["entries"])
    assert hold.kind == "payment" and settle.kind == "settle"
    credit = SignedEntry.from_dict(settle.evidence[0])  # bank 2's credit is bank 1's receipt
    credit.verify(b2.config.signing_key().public_key)
    assert credit.chain == bob.chain
    assert balance(b1, alice, USD) == (7500, 0)
    assert balance(b2, bob, USD) == (2500, 0)
    assert_chain_verifies(b1, alice)
    assert_chain_verifies(b2, bob)
    assert totals(b1, b2)[USD] == 0


def test_payment_to_an_unknown_payee_is_refused_by_the_peer_and_released(banks):
    b1, _b2, _ = banks
    dave = register(b1, "dave")
    deposit(b1.config, "dave", "1000", "USD")
    r = pay(b1, dave, dave, B2, 400)  # dave's chain is not at bank 2
    assert r.status_code == 201 and r.json()["flow"]["state"] == "released"
    assert "refused" in r.json()["flow"]["reason"]
    path = f"/v1/flows/{r.json()['flow']['id']}"
    shown = requests.get(b1.url + path, timeout=10, headers={"Authorization":
                         authorization_header(dave.key, "GET", path, "", b"", now_ms(),
                                              bank=B1)})
    assert shown.json()["state"] == "released" and "refused" in shown.json()["reason"]
    assert balance(b1, dave, USD) == (1000, 0)
    assert_chain_verifies(b1, dave)


def test_peer_down_during_a_payment_then_back_completes_once(banks):
    b1, b2, _ = banks
    erin, frank = register(b1, "erin"), register(b2, "frank")
    deposit(b1.config, "erin", "5000", "USD")
    b2.stop()
    try:
        r = pay(b1, erin, frank, B2, 1200)
        assert r.status_code == 202, r.text
        assert r.json()["flow"]["state"] == "pending"
        assert balance(b1, erin, USD) == (5000, 1200)
        [(_message_id, item)] = read(b1, lambda r: [
            (m, i) for m, i in r.records("outbox") if i["message"]["message"]["type"] ==
            "transfer"])
    finally:
        b2.start()
    eventually(lambda: balance(b1, erin, USD) == (3800, 0))
    assert balance(b2, frank, USD) == (1200, 0)
    # The same message delivered again (a replay): the same answer, nothing changes.
    before = read(b2, lambda r: snapshot_from(r))
    b1_key = b1.config.signing_key()
    first = post_message(b2, b1_key, item["message"])
    second = post_message(b2, b1_key, item["message"])
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert read(b2, lambda r: snapshot_from(r)) == before
    assert balance(b2, frank, USD) == (1200, 0)
    assert totals(b1, b2)[USD] == 0


def test_an_unpinned_bank_gets_403_and_changes_nothing(banks, tmp_path):
    _, b2, _ = banks
    grace = register(b2, "grace")
    stranger = SigningKey.generate()
    fake_hold = {"entry": {}, "sig": "0" * 128}
    some_entry = read(b2, lambda r: SignedEntry.from_bytes(r.entry(grace.chain, 0)).doc)
    for sender in ("bank9.example", B1):  # unknown name; a pinned name with the wrong key
        doc = {"message": {"type": "offer", "from": sender, "to": B2, "time": now_ms(),
                           "offer": fake_hold}, "sig": "0" * 128}
        store = store_of(b2)
        before = snapshot(store)
        signed = sign_message(stranger, "offer", sender, B2, now_ms(), offer=some_entry)
        r = post_message(b2, stranger, signed)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "forbidden"
        assert snapshot(store) == before
        store.close()
        assert post_message(b2, stranger, doc).status_code == 400  # malformed stays 400


def make_offer(bank, maker, sell, buy, expires_in=60.0):
    r = submit(bank, maker, "offer", {
        "sell": {"asset": sell[1], "amount": str(sell[0])},
        "buy": {"asset": buy[1], "amount": str(buy[0])},
        "expires": now_ms() + int(expires_in * 1000)})
    assert r.status_code == 201, r.text
    return SignedEntry.from_dict(r.json()["entries"][0])


def offers_at(bank, asset):
    return [o["id"] for o in requests.get(bank.url + "/v1/offers", params={"asset": asset},
                                          timeout=10).json()["offers"]]


def take(bank, taker, offer, maker_bank=B1):
    body = offer.intent.doc["intent"]["body"]
    return submit(bank, taker, "take", {"offer": offer.id, "validator": maker_bank,
                                        "sell": body["buy"], "buy": body["sell"]})


def traders(b1: LocalBank, b2: LocalBank, maker: str, taker: str) -> tuple[Customer, Customer]:
    """A maker at bank1 with 1000 USD and a taker at bank2 with 1000 EUR."""
    pair = register(b1, maker), register(b2, taker)
    deposit(b1.config, maker, "1000", "USD")
    deposit(b2.config, taker, "1000", "EUR")
    return pair


def test_offer_spreads_and_a_two_bank_exchange_settles_both_ledgers(banks):
    b1, b2, _ = banks
    hank, iris = traders(b1, b2, "hank", "iris")
    offer = make_offer(b1, hank, (300, USD), (270, EUR))
    assert balance(b1, hank, USD) == (1000, 300)  # funded: the sold amount is held
    eventually(lambda: offer.id in offers_at(b2, EUR))
    r = take(b2, iris, offer)
    assert r.status_code == 201, r.text
    assert r.json()["flow"]["state"] == "settled"
    eventually(lambda: balance(b1, hank, EUR) == (270, 0))
    assert balance(b1, hank, USD) == (700, 0)
    assert balance(b2, iris, EUR) == (730, 0) and balance(b2, iris, USD) == (300, 0)
    eventually(lambda: offer.id not in offers_at(b2, EUR))
    for bank, c in ((b1, hank), (b2, iris)):
        assert_chain_verifies(bank, c)
    t = totals(b1, b2)
    assert t[USD] == 0 and t[EUR] == 0


def test_two_takers_race_one_wins_and_the_other_is_released(banks):
    b1, b2, _ = banks
    jack, kim, lee = register(b1, "jack"), register(b2, "kim"), register(b2, "lee")
    deposit(b1.config, "jack", "500", "USD")
    for name in ("kim", "lee"):
        deposit(b2.config, name, "500", "EUR")
    offer = make_offer(b1, jack, (100, USD), (90, EUR))
    eventually(lambda: offer.id in offers_at(b2, EUR))
    answers: dict[str, requests.Response] = {}
    threads = [threading.Thread(target=lambda c=c: answers.__setitem__(c.name, take(b2, c, offer)))
               for c in (kim, lee)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a.status_code in (201, 202, 409) for a in answers.values()), \
        [a.text for a in answers.values()]
    eventually(lambda: sorted([balance(b2, kim, USD)[0], balance(b2, lee, USD)[0]]) == [0, 100])
    eventually(lambda: balance(b2, kim, EUR)[1] == 0 and balance(b2, lee, EUR)[1] == 0)
    assert balance(b1, jack, USD) == (400, 0) and balance(b1, jack, EUR) == (90, 0)
    t = totals(b1, b2)
    assert t[USD] == 0 and t[EUR] == 0


def test_offer_cancel_and_expiry_release_the_hold_and_spread(banks):
    b1, b2, _ = banks
    mia = register(b1, "mia")
    deposit(b1.config, "mia", "1000", "USD")
    cancelled = make_offer(b1, mia, (200, USD), (100, EUR))
    eventually(lambda: cancelled.id in offers_at(b2, EUR))
    r = submit(b1, mia, "cancel", {"offer": cancelled.id})
    assert r.status_code == 201, r.text
    assert balance(b1, mia, USD) == (1000, 0)
    eventually(lambda: cancelled.id not in offers_at(b2, EUR))
    expiring = make_offer(b1, mia, (300, USD), (100, EUR), expires_in=1.5)
    assert balance(b1, mia, USD) == (1000, 300)
    eventually(lambda: balance(b1, mia, USD) == (1000, 0))
    assert expiring.id not in offers_at(b1, EUR) and expiring.id not in offers_at(b2, EUR)
    assert_chain_verifies(b1, mia)


def test_peer_down_during_an_exchange_then_back_completes(banks):
    b1, b2, _ = banks
    noah, olga = traders(b1, b2, "noah", "olga")
    offer = make_offer(b1, noah, (150, USD), (120, EUR))
    eventually(lambda: offer.id in offers_at(b2, EUR))
    b1.stop()
    try:
        r = take(b2, olga, offer)
        assert r.status_code == 202, r.text
        assert balance(b2, olga, EUR) == (1000, 120)
    finally:
        b1.start()
    eventually(lambda: balance(b2, olga, USD) == (150, 0))
    assert balance(b2, olga, EUR) == (880, 0)
    assert balance(b1, noah, USD) == (850, 0) and balance(b1, noah, EUR) == (120, 0)
    t = totals(b1, b2)
    assert t[USD] == 0 and t[EUR] == 0


def test_a_bank_that_does_not_settle_leaves_a_verifiable_proof(banks, tmp_path):
    b1, _, b3 = banks
    pat, quinn = register(b1, "pat"), register(b3, "quinn")
    deposit(b1.config, "pat", "1000", "GBP")
    deposit(b3.config, "quinn", "1000", "USD")
    offer = make_offer(b1, pat, (400, GBP), (300, CHEAT))
    eventually(lambda: offer.id in offers_at(b3, CHEAT))
    r = take(b3, quinn, offer)
    assert r.status_code == 202, r.text  # bank3 never signs its settlement
    eventually(lambda: balance(b1, pat, CHEAT) == (300, 0))  # bank1 settled its side
    regulator = SigningKey.generate()
    add_regulator(b1.config, regulator.public_key)

    def proofs() -> list[Any]:
        path = "/v1/proofs"
        got = requests.get(b1.url + path, timeout=10, headers={"Authorization":
                           authorization_header(regulator, "GET", path, "", b"", now_ms(),
                                                bank=B1)})
        assert got.status_code == 200, got.text
        return list(got.json()["proofs"])

    [proof] = eventually(proofs, timeout=DEADLINE + 15)
    summary = verify_proof(proof)
    assert summary.culprit == b3.config.signing_key().public_key
    assert proof["answers"], "bank3's signed 'pending' answers belong in the proof"
    good = tmp_path / "proof.json"
    good.write_bytes(canonical(proof))
    ok = subprocess.run([sys.executable, "-P", "-m", "cli", "proof", "verify", str(good)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("valid non_settlement proof"), ok.stderr
    raw = bytearray(canonical(proof))
    i = raw.index(b'"deadline":') + len(b'"deadline":')
    raw[i] = ord("1") if raw[i] != ord("1") else ord("2")
    bad = tmp_path / "tampered.json"
    bad.write_bytes(bytes(raw))
    refused = subprocess.run([sys.executable, "-P", "-m", "cli", "proof", "verify", str(bad)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "signature" in refused.stderr
    listed = subprocess.run([sys.executable, "-P", "-m", "cli", "validator", "proofs", "--data",
                             str(b1.data), "--json"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and proof["sig"] in listed.stdout
    # For people: the banks by name, not by key; and a file per proof, each one that
    # `tchain proof verify` checks (the JSON list is not one proof document).
    out = tmp_path / "proofs"
    shown = subprocess.run([sys.executable, "-P", "-m", "cli", "validator", "proofs", "--data",
                            str(b1.data), "--out", str(out)], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert B3 in shown.stdout and B1 in shown.stdout
    for bank in (b1, b3):
        assert bank.config.signing_key().public_key not in shown.stdout, shown.stdout
    [written] = out.iterdir()
    assert str(written) in shown.stdout
    checked = subprocess.run([sys.executable, "-P", "-m", "cli", "proof", "verify",
                              str(written)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stdout.startswith("valid non_settlement"), \
        checked.stderr
    # The cheat is exactly what the proof documents: pat paid 400 GBP that quinn never got,
    # and holds 300 of bank3's USD that bank3 never took from quinn.
    t = totals(b1, b3)
    assert t[GBP] == -400 and t[CHEAT] == 300
    audit = run_audit(b1.config)
    assert audit.ok and audit.proofs == 1
    assert any("did not settle" in line for line in audit.in_flight)


def test_the_cli_pays_across_banks_and_trades_an_offer(banks, tmp_path):
    from tests.integration.test_cli import tchain

    b1, b2, _ = banks
    ray, sue = tmp_path / "ray.json", tmp_path / "sue.json"
    for path, name, bank in ((ray, "ray", b1), (sue, "sue", b2)):
        tchain("wallet", "create", wallet=path)
        tchain("register", name, "--validator", bank.url, wallet=path)
    tchain("validator", "deposit", "--data", str(b1.data), f"ray*{B1}", "1000", USD)
    tchain("validator", "deposit", "--data", str(b2.data), f"sue*{B2}", "1000", EUR)
    paid = tchain("pay", f"sue*{B2}", "250", USD, wallet=ray).stdout
    assert "settled: bank2.example signed its side too" in paid
    paid_entry = json.loads(tchain("history", "--json", wallet=ray).stdout)["entries"][-2]["id"]
    made = json.loads(tchain("offer", "create", "--sell", "100", USD, "--buy", "80", EUR,
                             "--json", wallet=ray).stdout)
    offer_id = made["entry"]

    def listed() -> list[dict[str, Any]]:
        out = json.loads(tchain("offer", "list", "--asset", USD, "--json", wallet=sue).stdout)
        return [o for o in out["offers"] if o["id"] == offer_id]

    [seen] = eventually(listed)
    assert seen["sell"] == {"asset": USD, "amount": "100"}
    taken = tchain("offer", "take", offer_id, wallet=sue).stdout
    assert "settled" in taken
    sue_balances = json.loads(tchain("balance", "--json", wallet=sue).stdout)["balances"]
    assert sue_balances[USD] == {"balance": "350", "held": "0"}
    assert sue_balances[EUR] == {"balance": "920", "held": "0"}
    eventually(lambda: json.loads(tchain("balance", "--json", wallet=ray).stdout)["balances"]
               .get(EUR) == {"balance": "80", "held": "0"})
    gone = tchain("offer", "take", offer_id, wallet=sue, check=False)
    assert gone.returncode == 1 and "not open" in gone.stderr
    assert "Traceback" not in gone.stderr
    history = tchain("history", wallet=ray).stdout
    assert "offer" in history and "settle" in history
    shown = json.loads(tchain("flow", paid_entry, "--json", wallet=ray).stdout)
    assert shown["type"] == "transfer" and shown["state"] == "settled"
    not_a_flow = tchain("flow", offer_id, wallet=ray, check=False)
    assert not_a_flow.returncode == 1 and "no cross-bank flow" in not_a_flow.stderr
    for bank in (b1, b2):
        assert run_audit(bank.config).ok, run_audit(bank.config).problems
    t = totals(b1, b2)
    assert t[USD] == 0 and t[EUR] == 0
