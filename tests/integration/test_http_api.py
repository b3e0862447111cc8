"""The single-bank HTTP API against a real server: the protocol and its attacks.

Each refused request is checked to change nothing in the bank's store (read from this process:
LMDB is multi-process safe).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from federation.records import verify_record, verify_well_known
from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.verify import verify_chain
from tests.helpers import BANK, USD, Customer, snapshot
from tests.realbanks import eventually, read, signed_get
from validator.operator import add_regulator, deposit, remove_regulator
from validator.store import Store


def post(bank, path: str, body: Any) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(bank.url + path, data=data, timeout=10,
                         headers={"Content-Type": "application/json"})


def get(bank, path: str, key: SigningKey | None = None, query: str = "") -> requests.Response:
    headers = {}
    if key is not None:
        headers["Authorization"] = authorization_header(key, "GET", path, query, b"", now_ms(),
                                                        bank=BANK)
    return requests.get(bank.url + path + (f"?{query}" if query else ""), headers=headers,
                        timeout=10)


def store_snapshot(bank) -> dict[str, Any]:
    store = Store(bank.config.ledger_path)
    try:
        return snapshot(store)
    finally:
        store.close()


def register(bank, name: str) -> Customer:
    customer = Customer(name)
    r = post(bank, "/v1/chains", register_request(customer.key, name, now_ms(), bank=BANK,
                                                  kyc_record={"legal_name": name}))
    assert r.status_code == 201, r.text
    customer.chain = SignedEntry.from_dict(r.json()).id
    return customer


def pay(bank, payer: Customer, payee: Customer, amount: str, **kw: Any) -> requests.Response:
    kw.setdefault("time", now_ms())
    r = post(bank, "/v1/intents", payer.payment(payee, amount, **kw))
    if r.status_code == 201:
        payer.seq += 1
    return r


def refused(bank, response_factory, status: int, code: str) -> dict[str, Any]:
    """Send a request that must be refused, and prove it changed nothing."""
    before = store_snapshot(bank)
    r = response_factory()
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    assert store_snapshot(bank) == before
    return body


@pytest.fixture(scope="module")
def people(bank):
    alice, bob = register(bank, "alice"), register(bank, "bob")
    deposit(bank.config, "alice", "10000", "USD")
    return alice, bob


def test_well_known_is_signed_and_open_to_any_origin(bank):
    r = requests.get(bank.url + "/.well-known/tchain.json", timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    doc = verify_well_known(r.json())
    assert doc["name"] == BANK and doc["api_url"] == bank.url and doc["protocol"] == 1
    assert doc["assets"] == [USD]


def test_federation_resolves_name_and_key_with_signed_records(bank, people):
    alice, _ = people
    key = verify_well_known(requests.get(bank.url + "/.well-known/tchain.json",
                                         timeout=10).json())["public_key"]
    by_name = requests.get(bank.url + "/federation",
                           params={"type": "name", "q": f"alice*{BANK}"}, timeout=10)
    assert by_name.headers["Access-Control-Allow-Origin"] == "*"
    record = verify_record(by_name.json(), key)
    assert record == {"address": f"alice*{BANK}", "account_id": alice.key.public_key,
                      "chain": alice.chain, "validator": BANK}
    for q in (alice.key.public_key, alice.chain):
        by_id = requests.get(bank.url + "/federation", params={"type": "id", "q": q}, timeout=10)
        assert verify_record(by_id.json(), key) == record


def test_federation_unknown_name_is_a_json_404(bank):
    r = requests.get(bank.url + "/federation", params={"type": "name", "q": f"nobody*{BANK}"},
                     timeout=10)
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_payment_is_cosigned_and_both_chains_verify(bank, people):
    alice, bob = people
    r = pay(bank, alice, bob, "1500")
    assert r.status_code == 201, r.text
    debit, credit = (SignedEntry.from_dict(e) for e in r.json()["entries"])
    assert debit.chain == alice.chain and credit.chain == bob.chain
    key = bank.config.signing_key().public_key
    for customer in (alice, bob):
        entries = get(bank, f"/v1/chains/{customer.chain}/entries", customer.key).json()
        state = verify_chain(entries["entries"], key, BANK, customer.chain)
        info = get(bank, f"/v1/chains/{customer.chain}", customer.key).json()
        assert info["height"] == state.height and info["head"] == state.head
        assert info["balances"] == {a: b.to_dict() for a, b in state.balances.items()}


def test_entries_are_paged(bank, people):
    alice, _ = people
    r = get(bank, f"/v1/chains/{alice.chain}/entries", alice.key, "from=1&limit=1")
    [entry] = r.json()["entries"]
    assert SignedEntry.from_dict(entry).height == 1


def test_rejects_replayed_intent(bank, people):
    alice, bob = people
    doc = alice.payment(bob, "1", time=now_ms())
    assert post(bank, "/v1/intents", doc).status_code == 201
    alice.seq += 1
    body = refused(bank, lambda: post(bank, "/v1/intents", doc), 409, "bad_seq")
    assert body["expected"] == alice.seq + 1


def test_rejects_skipped_seq(bank, people):
    alice, bob = people
    refused(bank, lambda: pay(bank, alice, bob, "1", seq=alice.seq + 2), 409, "bad_seq")


def test_tampered_amount_breaks_signature(bank, people):
    alice, bob = people
    doc = alice.payment(bob, "1", time=now_ms())
    doc["intent"]["body"]["amount"] = "9000"
    refused(bank, lambda: post(bank, "/v1/intents", doc), 400, "bad_signature")


def test_wrong_key_is_refused(bank, people):
    alice, bob = people
    mallory = Customer("mallory", chain=alice.chain, seq=alice.seq)
    refused(bank, lambda: post(bank, "/v1/intents", mallory.payment(bob, "1", time=now_ms())),
            400, "bad_signature")


def test_rejects_overdraft(bank, people):
    alice, bob = people
    refused(bank, lambda: pay(bank, alice, bob, "100000000"), 422, "insufficient_funds")


@pytest.mark.parametrize("amount", ["-100", "1.5", 1.5, 100])
def test_rejects_float_and_negative_amounts(bank, people, amount):
    alice, bob = people
    doc = alice.payment(bob, "1", time=now_ms())
    raw = canonical(doc).replace(b'"amount":"1"', b'"amount":' + json.dumps(amount).encode())
    refused(bank, lambda: post(bank, "/v1/intents", raw), 400, "bad_request")


def test_rejects_stale_time(bank, people):
    alice, bob = people
    refused(bank, lambda: pay(bank, alice, bob, "1", time=now_ms() - 600_000), 400,
            "stale_time")


def test_rejects_unknown_recipient(bank, people):
    alice, _ = people
    ghost = Customer("ghost", chain="cd" * 32)
    refused(bank, lambda: pay(bank, alice, ghost, "1"), 404, "unknown_chain")


def test_rejects_duplicate_json_keys(bank, people):
    alice, bob = people
    raw = canonical(alice.payment(bob, "1", time=now_ms()))
    raw = raw.replace(b'"amount":"1"', b'"amount":"1","amount":"5000"')
    refused(bank, lambda: post(bank, "/v1/intents", raw), 400, "bad_request")


def test_rejects_oversized_body(bank):
    refused(bank, lambda: post(bank, "/v1/intents", b"[" + b"1," * 700_000 + b"1]"), 413,
            "too_large")


def test_another_customers_chain_read_is_forbidden(bank, people):
    alice, bob = people
    refused(bank, lambda: get(bank, f"/v1/chains/{alice.chain}", bob.key), 403, "forbidden")
    refused(bank, lambda: get(bank, f"/v1/chains/{alice.chain}/entries", bob.key), 403,
            "forbidden")


def test_unauthenticated_read_is_refused(bank, people):
    alice, _ = people
    refused(bank, lambda: get(bank, f"/v1/chains/{alice.chain}"), 401, "unauthorized")


def test_an_unauthenticated_write_is_not_called_a_read(bank):
    """A new user's finding: a peer message posted without Authorization was told "this read
    needs an Authorization"."""
    r = requests.post(f"{bank.url}/v1/peer/messages", data=b"{}", timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text
    assert "this request needs an Authorization" in r.json()["message"], r.text


def test_signed_read_cannot_be_moved_to_another_path(bank, people):
    alice, bob = people
    header = authorization_header(alice.key, "GET", f"/v1/chains/{alice.chain}", "", b"",
                                  now_ms(), bank=BANK)
    r = requests.get(f"{bank.url}/v1/chains/{bob.chain}", headers={"Authorization": header},
                     timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_expired_read_signature_is_refused(bank, people):
    alice, _ = people
    path = f"/v1/chains/{alice.chain}"
    header = authorization_header(alice.key, "GET", path, "", b"", now_ms() - 400_000,
                                  bank=BANK)
    r = requests.get(bank.url + path, headers={"Authorization": header}, timeout=10)
    assert r.status_code == 401


def test_regulator_lists_and_reads_every_chain(bank, people):
    alice, bob = people
    regulator = SigningKey.generate()
    refused(bank, lambda: get(bank, "/v1/chains", regulator), 403, "forbidden")
    add_regulator(bank.config, regulator.public_key)
    chains = get(bank, "/v1/chains", regulator).json()["chains"]
    assert {alice.chain, bob.chain} <= set(chains)
    assert get(bank, f"/v1/chains/{bob.chain}", regulator).status_code == 200
    first = get(bank, "/v1/chains", regulator, "limit=1").json()
    second = get(bank, "/v1/chains", regulator, f"limit=1&after={first['next']}").json()
    assert first["chains"] != second["chains"]


def test_a_removed_regulator_reads_nothing_from_its_next_request(bank, people):
    _, bob = people
    regulator = SigningKey.generate()
    add_regulator(bank.config, regulator.public_key)
    assert get(bank, f"/v1/chains/{bob.chain}", regulator).status_code == 200
    remove_regulator(bank.config, regulator.public_key)
    refused(bank, lambda: get(bank, f"/v1/chains/{bob.chain}", regulator), 403, "forbidden")
    refused(bank, lambda: get(bank, "/v1/chains", regulator), 403, "forbidden")


def test_name_taken_is_a_conflict(bank, people):
    doc = register_request(SigningKey.generate(), "alice", now_ms(), bank=BANK,
                           kyc_record=None)
    refused(bank, lambda: post(bank, "/v1/chains", doc), 409, "conflict")


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "x"])
def test_a_page_limit_outside_1_to_1000_is_a_bad_request(bank, people, limit):
    """limit=0 answered 500 (a page of none has no last id to go on from)."""
    alice, _ = people
    regulator = SigningKey.generate()
    add_regulator(bank.config, regulator.public_key)
    for key, path in ((regulator, "/v1/chains"), (alice.key, f"/v1/chains/{alice.chain}/entries")):
        refused(bank, lambda k=key, p=path: get(bank, p, k, f"limit={limit}"), 400,
                "bad_request")


def test_a_chain_paying_itself_is_a_bad_request_with_status_400(bank, people):
    """A rule's refusal with the code bad_request is a 400, as PROTOCOL.md §6 fixes (it was
    422, the status of the rule errors' class)."""
    alice, _ = people
    refused(bank, lambda: pay(bank, alice, alice, "1"), 400, "bad_request")


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/no/such/thing", 404, "not_found"),
    ("GET", "//v1/chains", 404, "not_found"),  # was routed as /v1/chains
    ("GET", "//.well-known/tchain.json", 404, "not_found"),
    ("GET", "/v1//chains", 404, "not_found"),  # was a redirect, an HTML page
    ("DELETE", "/v1/intents", 405, "method_not_allowed"),
    ("GET", "/v1/chains/not-a-chain-id/entries", 401, "unauthorized"),
])
def test_every_error_is_json(bank, method, path, status, code):
    r = requests.request(method, bank.url + path, timeout=10, allow_redirects=False)
    assert r.status_code == status and r.json()["error"] == code


def test_register_intent_sent_to_intents_is_refused(bank):
    doc = register_request(SigningKey.generate(), "zed", now_ms(), bank=BANK,
                           kyc_record=None)
    refused(bank, lambda: post(bank, "/v1/intents", doc), 400, "bad_request")


def test_a_lost_key_is_recovered_over_http_and_the_bank_hands_it_over_on_time(bank):
    """The recovery endpoint, and the bank's clock handing the chain over after the delay."""
    old, new = SigningKey.generate(), SigningKey.generate()
    kyc = {"legal_name": "Rhea", "recovery_code": "K7Q2M4RZ3XW3N6PBT5VJC4HDLA"}
    r = requests.post(bank.url + "/v1/chains", timeout=10, data=canonical(register_request(
        old, "rhea", now_ms(), bank=bank.name, kyc_record=kyc,
        params={"recovery_delay": "3000"})))
    assert r.status_code == 201, r.text
    chain = SignedEntry.from_dict(r.json()).id
    intent = sign_intent(new, "recover", chain, 0, now_ms(), {"owner": new.public_key})
    wrong = requests.post(f"{bank.url}/v1/chains/{chain}/recovery", timeout=10,
                          data=canonical({**intent, "kyc_record": {"legal_name": "Rhe"}}))
    assert (wrong.status_code, wrong.json()["error"]) == (403, "forbidden"), wrong.text
    asked = requests.post(f"{bank.url}/v1/chains/{chain}/recovery", timeout=10,
                          data=canonical({**intent, "kyc_record": kyc}))
    assert asked.status_code == 202, asked.text
    assert asked.json()["recovery"]["owner"] == new.public_key
    # the key a recovery waits to give the chain to is nobody's yet (the third attacker)
    pending = requests.get(f"{bank.url}/federation", params={"type": "id", "q": new.public_key},
                           timeout=10)
    assert pending.status_code == 404, pending.text
    eventually(lambda: read(bank, lambda r: r.state(chain).owner) == new.public_key)
    assert signed_get(bank, new, f"/v1/chains/{chain}").status_code == 200
    assert signed_get(bank, old, f"/v1/chains/{chain}").status_code == 403


def test_guesses_at_a_chains_kyc_record_are_few_whatever_keys_sign_them(bank):
    """The third outside attacker guessed a customer's KYC record 201 times in 0.7 s, each
    guess signed by a fresh key: a chain's recovery has a budget of its own."""
    kyc = {"legal_name": "Vera", "recovery_code": "Q2M4RZ3XW3N6PBT5VJC4HDLAK7"}
    r = requests.post(bank.url + "/v1/chains", timeout=10, data=canonical(register_request(
        SigningKey.generate(), "vera", now_ms(), bank=bank.name, kyc_record=kyc)))
    chain = SignedEntry.from_dict(r.json()).id
    answers = []
    for n in range(7):
        guess = SigningKey.generate()
        intent = sign_intent(guess, "recover", chain, 0, now_ms(), {"owner": guess.public_key})
        answers.append(requests.post(
            f"{bank.url}/v1/chains/{chain}/recovery", timeout=10,
            data=canonical({**intent, "kyc_record": {"legal_name": "Vera",
                                                     "recovery_code": f"{n:026d}"}})))
    codes = [(a.status_code, a.json()["error"]) for a in answers]
    assert codes[:5] == [(403, "forbidden")] * 5, codes
    assert codes[5:] == [(429, "rate_limited")] * 2, codes
    assert int(answers[-1].headers["Retry-After"]) > 0


def test_unsigned_attempts_do_not_spend_a_chains_recovery_budget(bank):
    """The fourth outside attacker spent a chain's budget with five unsigned requests, knowing
    only its id, and its owner was then refused (429) with the right record for 10 minutes:
    only attempts that are signed, fresh and for a chain here are counted."""
    kyc = {"legal_name": "Ines", "recovery_code": "M4RZ3XW3N6PBT5VJC4HDLAK7Q2"}
    r = requests.post(bank.url + "/v1/chains", timeout=10, data=canonical(register_request(
        SigningKey.generate(), "ines", now_ms(), bank=bank.name, kyc_record=kyc)))
    chain = SignedEntry.from_dict(r.json()).id
    junk = {"intent": {"type": "recover", "chain": chain, "seq": 0, "time": now_ms(),
                       "body": {"owner": "00" * 32}}, "sig": "00" * 64, "kyc_record": {}}
    for _ in range(8):
        refused = requests.post(f"{bank.url}/v1/chains/{chain}/recovery", timeout=10,
                                data=canonical(junk))
        assert refused.status_code == 400, refused.text
    new = SigningKey.generate()
    intent = sign_intent(new, "recover", chain, 0, now_ms(), {"owner": new.public_key})
    asked = requests.post(f"{bank.url}/v1/chains/{chain}/recovery", timeout=10,
                          data=canonical({**intent, "kyc_record": kyc}))
    assert asked.status_code == 202, asked.text
