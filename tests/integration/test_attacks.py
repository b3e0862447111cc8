"""Attacks on real validators: replays (to another worker, after a restart, after the
deadline), a second valid signature over the same intent, unusable keys, a signature moved to
another domain, a body changed under a valid header, and rate limits shared by the workers.
Each refused attempt is a JSON 4xx and leaves the store byte for byte as it was."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Any

import nacl.bindings as ed
import nacl.signing
import pytest
import requests

from cli.local import LocalBank
from tchain.auth import authorization_header, request_doc
from tchain.clock import now_ms
from tchain.encoding import canonical, parse
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tchain.model import SignedEntry, SignedIntent
from tests.helpers import Customer
from tests.realbanks import (
    balance,
    eventually,
    post_message,
    read,
    register,
    signed_get,
    snapshot_from,
    totals,
)
from validator.operator import deposit
from validator.peers import add_peer

B1, B2 = "bank1.example", "bank2.example"
USD = f"{B1}:USD"


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    b1 = LocalBank(base / "b1", B1, settle_deadline=2)
    b2 = LocalBank(base / "b2", B2, settle_deadline=2)
    with b1, b2:
        add_peer(b1.config, b2.url)
        add_peer(b2.config, b1.url)
        yield b1, b2


def post_intent(bank: LocalBank, doc: dict[str, Any]) -> requests.Response:
    return requests.post(bank.url + "/v1/intents", data=canonical(doc), timeout=30)


def payment(c: Customer, to: Customer, amount: int, seq: int | None = None,
            to_bank: str = B1) -> dict[str, Any]:
    return sign_intent(c.key, "payment", c.chain, c.seq + 1 if seq is None else seq, now_ms(),
                       {"to": to.chain, "to_validator": to_bank, "asset": USD,
                        "amount": str(amount)})


def at_once(n: int, send: Any) -> list[requests.Response]:
    """``send()`` from ``n`` threads released together: they land on different workers."""
    barrier = threading.Barrier(n)
    out: list[requests.Response] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        r = send()
        with lock:
            out.append(r)
    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def refused_and_unchanged(bank: LocalBank, send: Any, status: int) -> requests.Response:
    before = read(bank, snapshot_from)
    r = send()
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json" and r.json()["error"]
    assert read(bank, snapshot_from) == before
    return r


def test_one_intent_sent_to_every_worker_at_once_is_applied_once(banks):
    b1, _ = banks
    alice, bob = register(b1, "alice"), register(b1, "bob")
    deposit(b1.config, "alice", "1000", "USD")
    doc = payment(alice, bob, 10)
    answers = at_once(8, lambda: post_intent(b1, doc))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 7
    assert all(r.json()["error"] == "bad_seq" for r in answers if r.status_code == 409)
    assert balance(b1, bob, USD) == (10, 0)


def test_a_replayed_intent_after_a_restart_is_refused(banks):
    b1, _ = banks
    alice, bob = register(b1, "alice2"), register(b1, "bob2")
    deposit(b1.config, "alice2", "1000", "USD")
    doc = payment(alice, bob, 10)
    assert post_intent(b1, doc).status_code == 201
    b1.stop()
    b1.start()
    refused_and_unchanged(b1, lambda: post_intent(b1, doc), 409)
    assert balance(b1, bob, USD) == (10, 0)


def second_signature(key: SigningKey, message: bytes) -> str:
    """Another valid Ed25519 signature of ``message`` by ``key``: same key, a random nonce
    instead of RFC 8032's deterministic one, as another Ed25519 library may. Both verify."""
    h = hashlib.sha512(key.seed).digest()
    scalar = bytearray(h[:32])
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    a = ed.crypto_core_ed25519_scalar_reduce(bytes(scalar) + bytes(32))
    public = ed.crypto_scalarmult_ed25519_base_noclamp(a)
    r = ed.crypto_core_ed25519_scalar_reduce(os.urandom(64))
    big_r = ed.crypto_scalarmult_ed25519_base_noclamp(r)
    k = ed.crypto_core_ed25519_scalar_reduce(hashlib.sha512(big_r + public + message).digest())
    s = ed.crypto_core_ed25519_scalar_add(r, ed.crypto_core_ed25519_scalar_mul(k, a))
    return (big_r + s).hex()


def test_a_second_valid_signature_over_the_same_intent_is_not_applied_twice(banks):
    b1, _ = banks
    alice, bob = register(b1, "alice3"), register(b1, "bob3")
    deposit(b1.config, "alice3", "1000", "USD")
    first = payment(alice, bob, 10)
    parsed = SignedIntent.from_dict(first)
    other = {"intent": first["intent"], "sig": second_signature(alice.key, parsed.digest)}
    assert other["sig"] != first["sig"]
    nacl.signing.VerifyKey(bytes.fromhex(alice.key.public_key)).verify(
        parsed.digest, bytes.fromhex(other["sig"]))  # genuinely valid
    assert SignedIntent.from_dict(other).id == parsed.id  # ids never depend on the signature
    assert post_intent(b1, other).status_code == 201
    refused_and_unchanged(b1, lambda: post_intent(b1, first), 409)
    assert balance(b1, bob, USD) == (10, 0)


@pytest.mark.parametrize("bad_key", [
    "00" * 32,                # the identity point: small order
    "01" + "00" * 31,         # small order
    "ec" + "ff" * 30 + "7f",  # y >= p: not a canonical encoding
])
def test_a_small_order_or_non_canonical_key_cannot_register(banks, bad_key):
    b1, _ = banks
    doc = register_request(SigningKey.generate(), "mallory", now_ms(), bank=B1,
                           kyc_record=None)
    body = _with_key(doc, bad_key)
    r = refused_and_unchanged(b1, lambda: requests.post(b1.url + "/v1/chains",
                                                        data=canonical(body), timeout=10), 400)
    assert "key" in r.json()["message"]


def _with_key(doc: Any, key: str) -> Any:
    """``doc`` with every public key field replaced by ``key``."""
    if isinstance(doc, dict):
        return {k: key if k in ("key", "owner") and isinstance(v, str) else _with_key(v, key)
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [_with_key(v, key) for v in doc]
    return doc


def some_entry(bank: LocalBank) -> dict[str, Any]:
    """A real signed entry (the bank chain's genesis), for messages that must carry one."""
    chain = read(bank, lambda r: r.chain_ids(None, 1)[0])
    return read(bank, lambda r: SignedEntry.from_bytes(r.entry(chain, 0)).doc)


def test_a_signature_made_for_one_domain_is_refused_in_another(banks):
    b1, _ = banks
    alice, bob = register(b1, "alice4"), register(b1, "bob4")
    deposit(b1.config, "alice4", "1000", "USD")
    # An intent signed as a "request" (the domain of Authorization headers).
    intent = payment(alice, bob, 10)["intent"]
    as_request = {"intent": intent, "sig": alice.key.sign("request", intent)}
    r = refused_and_unchanged(b1, lambda: post_intent(b1, as_request), 400)
    assert r.json()["error"] == "bad_signature"
    # A read whose header signature was made in the "intent" domain.
    path = f"/v1/chains/{alice.chain}"
    t = now_ms()
    sig = alice.key.sign("intent", request_doc("GET", path, "", b"", t, bank=B1))
    header = f"TChain key={alice.key.public_key}, time={t}, sig={sig}"
    r = refused_and_unchanged(b1, lambda: requests.get(
        b1.url + path, headers={"Authorization": header}, timeout=10), 401)
    # A peer message signed by the peer bank's key in the "entry" domain.
    b2_key = banks[1].config.signing_key()
    message = sign_message(b2_key, "offer", B2, B1, now_ms(), offer=some_entry(b1))
    message["sig"] = b2_key.sign("entry", message["message"])
    refused_and_unchanged(b1, lambda: post_message(b1, b2_key, message), 400)


def test_a_body_changed_under_a_valid_header_is_refused(banks):
    b1, b2 = banks
    key = b2.config.signing_key()
    path = "/v1/peer/messages"
    entry = some_entry(b1)
    signed_for = canonical(sign_message(key, "offer_closed", B2, B1, now_ms(), offer="00" * 32,
                                        entry=entry))
    sent = canonical(sign_message(key, "offer_closed", B2, B1, now_ms(), offer="11" * 32,
                                  entry=entry))
    header = authorization_header(key, "POST", path, "", signed_for, now_ms(), bank=B1)
    r = refused_and_unchanged(b1, lambda: requests.post(
        b1.url + path, data=sent, headers={"Authorization": header}, timeout=10), 401)
    assert r.json()["error"] == "unauthorized"


def test_a_peer_message_under_a_header_made_for_another_bank_is_refused(banks):
    """bank2's message to bank1, well signed, under a header bank2 made for bank3: refused
    at the header (401), before the message is read; the same message under a header made for
    bank1 is taken."""
    b1, b2 = banks
    key = b2.config.signing_key()
    path = "/v1/peer/messages"
    body = canonical(sign_message(key, "offer_closed", B2, B1, now_ms(), offer="22" * 32,
                                  entry=some_entry(b1)))
    for_b3 = authorization_header(key, "POST", path, "", body, now_ms(), bank="bank3.example")
    r = refused_and_unchanged(b1, lambda: requests.post(
        b1.url + path, data=body, headers={"Authorization": for_b3}, timeout=10), 401)
    assert r.json()["error"] == "unauthorized" and B1 in r.json()["message"]
    assert post_message(b1, key, parse(body)).status_code == 200


def test_peer_message_replays_to_every_worker_after_a_restart_and_after_the_deadline(banks):
    """A transfer queued while bank 2 was down, delivered, then replayed by hand: to all
    workers at once, after bank 2 restarts, and after the transfer's deadline. Every replay
    gets the first answer's bytes and credits nothing."""
    b1, b2 = banks
    payer, payee = register(b1, "payer"), register(b2, "payee")
    deposit(b1.config, "payer", "1000", "USD")
    b2.stop()
    try:
        r = post_intent(b1, payment(payer, payee, 300, to_bank=B2))
        assert r.status_code == 202, r.text
        [message] = read(b1, lambda r: [i["message"] for _, i in r.records("outbox")
                                        if i["message"]["message"]["type"] == "transfer"])
    finally:
        b2.start()
    eventually(lambda: balance(b1, payer, USD) == (700, 0))
    key = b1.config.signing_key()
    first = post_message(b2, key, message)
    before = read(b2, snapshot_from)
    answers = at_once(6, lambda: post_message(b2, key, message))
    assert {(a.status_code, a.content) for a in answers} == {(200, first.content)}
    b2.stop()
    b2.start()
    time.sleep(2.5)  # past the transfer's 2 s deadline
    assert post_message(b2, key, message).content == first.content
    assert read(b2, snapshot_from) == before
    assert balance(b2, payee, USD) == (300, 0)
    assert totals(b1, b2)[USD] == 0


def test_rate_limits_are_per_key_shared_by_the_workers_and_change_nothing(tmp_path):
    name = "limited.example"
    with LocalBank(tmp_path / "bank", name, workers=2,
                   extra_args=("--rate-limit", "2", "--rate-burst", "5")) as bank:
        alice, bob = register(bank, "alice"), register(bank, "bob")
        path = f"/v1/chains/{alice.chain}"
        started = time.monotonic()
        answers = at_once(4, lambda: signed_get(bank, alice.key, path)) + \
            at_once(4, lambda: signed_get(bank, alice.key, path)) + \
            at_once(4, lambda: signed_get(bank, alice.key, path))
        elapsed = time.monotonic() - started
        ok = [a for a in answers if a.status_code == 200]
        limited = [a for a in answers if a.status_code == 429]
        assert len(ok) + len(limited) == 12
        # One budget for both workers: at most the burst plus what refilled meanwhile.
        assert 5 <= len(ok) <= 5 + int(2 * elapsed) + 1, (len(ok), elapsed)
        assert limited[0].json()["error"] == "rate_limited"
        assert int(limited[0].headers["Retry-After"]) >= 1
        assert signed_get(bank, bob.key, f"/v1/chains/{bob.chain}").status_code == 200
        deposit(bank.config, "alice", "100", "USD")
        doc = sign_intent(alice.key, "payment", alice.chain, 1, now_ms(),
                          {"to": bob.chain, "to_validator": name, "asset": f"{name}:USD",
                           "amount": "1"})
        before = read(bank, snapshot_from)
        r = post_intent(bank, doc)
        assert r.status_code == 429 and r.json()["error"] == "rate_limited", r.text
        assert read(bank, snapshot_from) == before
