"""What an attacker who saw only the protocol pages found against a running bank, each as the
request that did it: a 500 from a lone surrogate, a customer locked out by replays of an intent
anyone can read, a page number in another script's digits, a flow's chain named to a stranger.
(Its findings against the peer protocol are in tests/unit/tchain/test_peer_trust.py.)"""

from __future__ import annotations

import requests

from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.keys import SigningKey
from tests.hostile.conftest import B1
from tests.hostile.harness import open_offer
from tests.realbanks import read, register, signed_get, snapshot_from, submit
from validator.operator import deposit

USD = f"{B1}:USD"


def test_a_lone_surrogate_anywhere_in_a_body_is_a_json_400(pair, liar):
    b1, _b2 = pair
    before = read(b1, snapshot_from)
    bodies = [("/v1/chains", b'{"\\ud800": 1}'),
              ("/v1/intents", b'{"intent": {}, "sig": "x", "\\ud800": 1}'),
              ("/v1/intents/batch", b'{"intents": ["\\udfff"]}')]
    for path, body in bodies:
        r = requests.post(b1.url + path, data=body, timeout=10)
        assert (r.status_code, r.json()["error"]) == (400, "bad_request"), r.text
        assert "lone surrogate" in r.json()["message"]
    r = liar.post(b'{"message": {"\\ud800": 1}, "sig": "00"}')
    assert (r.status_code, r.json()["error"]) == (400, "bad_request"), r.text
    assert read(b1, snapshot_from) == before


def test_replaying_a_customer_s_old_intent_does_not_spend_their_rate_budget(pair):
    """An offer's signed intent is public (GET /v1/offers); replayed 300 times it is
    refused each time (bad_seq), and its maker may still pay and read."""
    b1, _b2 = pair
    maker, offer = open_offer(b1, "replayed-maker", (USD, "10"), (f"{B1}:EUR", "9"))
    intent = canonical(offer.doc["entry"]["intent"])
    with requests.Session() as s:
        codes = {s.post(b1.url + "/v1/intents", data=intent, timeout=10).status_code
                 for _ in range(300)}
    assert codes == {409}
    payee = register(b1, "replayed-payee")
    r = submit(b1, maker, "payment", {"to": payee.chain, "asset": USD, "amount": "1"})
    assert r.status_code == 201, r.text
    assert signed_get(b1, maker.key, f"/v1/chains/{maker.chain}").status_code == 200


def test_a_page_number_in_other_digits_is_refused(pair):
    b1, _b2 = pair
    alice = register(b1, "digits")
    path = f"/v1/chains/{alice.chain}/entries"
    r = signed_get(b1, alice.key, path, "from=%D9%A1")  # ARABIC-INDIC DIGIT ONE
    assert (r.status_code, r.json()["error"]) == (400, "bad_request"), r.text


def test_a_stranger_asking_for_a_flow_is_not_told_its_chain(pair):
    b1, b2 = pair
    payer, payee = register(b1, "flow-payer"), register(b2, "flow-payee")
    deposit(b1.config, "flow-payer", "100", "USD")
    r = submit(b1, payer, "payment", {"to": payee.chain, "to_validator": b2.name,
                                      "asset": USD, "amount": "5"})
    flow = r.json()["flow"]["id"]
    stranger = SigningKey.generate()
    path = f"/v1/flows/{flow}"
    r = requests.get(b1.url + path, timeout=10, headers={"Authorization": authorization_header(
        stranger, "GET", path, "", b"", now_ms(), bank=B1)})
    assert r.status_code == 403 and payer.chain not in r.text, r.text


def test_fresh_keys_share_one_budget_and_cannot_crowd_out_customers(pair):
    """Found by the second outside attacker: 75,000 reads, each signed by a fresh key,
    filled the store of budgets and then new customers' requests failed (500). Keys that are
    nobody here now share one budget; customers keep theirs."""
    b1, _b2 = pair
    alice = register(b1, "budgeted")
    path = f"/v1/chains/{alice.chain}"
    codes = [signed_get(b1, SigningKey.generate(), path).status_code for _ in range(150)]
    assert set(codes) == {403, 429}, codes  # one budget: a key of its own would never be
    assert signed_get(b1, alice.key, path).status_code == 200
    newcomer = register(b1, "newcomer")
    assert signed_get(b1, newcomer.key, f"/v1/chains/{newcomer.chain}").status_code == 200


def test_a_kyc_record_past_its_bound_is_refused_and_registrations_share_a_budget(tmp_path):
    """Found by the second outside attacker: registrations with a 1 MB KYC record each, from
    fresh keys, filled the disk at 62 MB a second."""
    from cli.local import LocalBank
    from tchain.intents import register_request

    with LocalBank(tmp_path / "b", "bank9.example") as bank:
        key = SigningKey.generate()
        huge = {"legal_name": "x" * 20_000}
        r = requests.post(bank.url + "/v1/chains", timeout=10, data=canonical(
            register_request(key, "huge", now_ms(), bank=bank.name, kyc_record=huge)))
        assert (r.status_code, r.json()["error"]) == (400, "bad_request"), r.text
        codes = [requests.post(bank.url + "/v1/chains", timeout=10, data=canonical(
            register_request(SigningKey.generate(), f"c{i}", now_ms(), bank=bank.name,
                             kyc_record=None))).status_code for i in range(80)]
        assert set(codes) == {201, 429} and 45 <= codes.count(201) <= 60, codes
