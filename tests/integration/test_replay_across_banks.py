"""Replays at another bank: a customer's signed registration, a read's Authorization header and
a peer bank's request header, each made for one bank and sent to another (PROTOCOL.md §3, §7).

Three real validators on loopback: bank1 is a peer of bank2 (reached through a proxy that keeps
every request bank1 sends it) and of bank3. Each replay is refused with a JSON 4xx, reads
nothing, and leaves the store it reached byte for byte as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from cli.local import LocalBank
from tchain.clock import now_ms
from tchain.encoding import canonical, parse
from tchain.model import SignedEntry
from tests.fault_proxy import FaultProxy
from tests.realbanks import (
    balance,
    eventually,
    read,
    register,
    signed_get,
    snapshot_from,
    submit,
)
from validator.operator import add_regulator, deposit
from validator.peers import add_peer

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"
USD = f"{B1}:USD"


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    base = tmp_path_factory.mktemp("replay")
    proxy = FaultProxy()  # no faults: it only keeps what bank1 sends bank2
    b1 = LocalBank(base / "b1", B1)
    b2 = LocalBank(base / "b2", B2, assets=("EUR",), public_url=proxy.url)
    b3 = LocalBank(base / "b3", B3)
    proxy.start(b2.port)
    try:
        with b1, b2, b3:
            for a, b in ((b1, b2), (b1, b3)):
                add_peer(a.config, proxy.url if b is b2 else b.url)
                add_peer(b.config, a.url)
            yield b1, b2, b3, proxy
    finally:
        proxy.close()


def refused_and_unchanged(bank: LocalBank, send: Any, status: int, code: str
                          ) -> requests.Response:
    """``send()`` is refused by ``bank`` with a JSON error (§6) and changes nothing there."""
    before = read(bank, snapshot_from)
    r = send()
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert parse(r.content).keys() == {"error", "message"}
    assert r.json()["error"] == code
    assert read(bank, snapshot_from) == before
    return r


def test_a_registration_signed_for_one_bank_is_refused_at_another(banks):
    b1, b2, _, _ = banks
    alice = register(b1, "alice")
    # The signed register intent travels in the genesis, which the customer shows anyone she
    # proves her chain to; the KYC record travels beside it when she registers.
    genesis = read(b1, lambda r: SignedEntry.from_bytes(r.entry(alice.chain, 0)))
    kyc = read(b1, lambda r: parse(r.kyc(alice.chain)))
    assert genesis.intent is not None
    replay = {"intent": genesis.intent.doc["intent"], "sig": genesis.intent.sig,
              "kyc_record": kyc}
    refused_and_unchanged(b2, lambda: requests.post(b2.url + "/v1/chains",
                                                    data=canonical(replay), timeout=10),
                          400, "bad_request")
    assert read(b2, lambda r: r.chain_by_owner(alice.key.public_key)) is None
    lookup = requests.get(b2.url + "/federation", params={"type": "name", "q": f"alice*{B2}"},
                          timeout=10)
    assert lookup.status_code == 404


def test_a_customers_read_header_made_for_one_bank_is_refused_at_another(banks):
    b1, b2, _, _ = banks
    # One key owns a chain at each bank.
    carol = register(b1, "carol")
    carol2 = register(b2, "carol", key=carol.key)
    path = f"/v1/chains/{carol2.chain}/entries"
    at_b1 = signed_get(b1, carol.key, path)  # a read sent to bank1: its header is good there
    assert at_b1.status_code == 404 and at_b1.json()["error"] == "unknown_chain", at_b1.text
    header = at_b1.request.headers["Authorization"]
    r = refused_and_unchanged(b2, lambda: requests.get(
        b2.url + path, headers={"Authorization": header}, timeout=10), 401, "unauthorized")
    assert "entries" not in r.json()


def test_a_regulators_read_header_made_for_one_bank_is_refused_at_another(banks):
    b1, b2, _, _ = banks
    regulator = register(b1, "regulator-key-holder").key
    add_regulator(b1.config, regulator.public_key)
    add_regulator(b2.config, regulator.public_key)
    at_b1 = signed_get(b1, regulator, "/v1/chains")
    assert at_b1.status_code == 200, at_b1.text
    header = at_b1.request.headers["Authorization"]
    r = refused_and_unchanged(b2, lambda: requests.get(
        b2.url + "/v1/chains", headers={"Authorization": header}, timeout=10),
        401, "unauthorized")
    assert "chains" not in r.json()


def test_a_peer_banks_request_header_made_for_one_bank_is_refused_at_another(banks):
    """What bank1 posted to bank2 (a transfer alone, two in a batch), replayed at bank3, where
    bank1 is a pinned peer too: refused at the header."""
    b1, b2, b3, proxy = banks
    payer, payee = register(b1, "payer"), register(b2, "payee")
    deposit(b1.config, "payer", "1000", "USD")
    transfer = submit(b1, payer, "payment", {"to": payee.chain, "to_validator": B2,
                                             "asset": USD, "amount": "300"})
    assert transfer.status_code in (201, 202), transfer.text
    eventually(lambda: balance(b1, payer, USD) == (700, 0))
    two = [payer.intent("payment", {"to": payee.chain, "to_validator": B2, "asset": USD,
                                    "amount": "100"}, seq=payer.seq + n, time=now_ms())
           for n in (1, 2)]
    r = requests.post(b1.url + "/v1/intents/batch", data=canonical({"intents": two}),
                      timeout=30)  # two messages to bank2 at once: one batch
    assert r.status_code == 200 and all(x["status"] in (201, 202) for x in r.json()["results"])
    payer.seq += 2
    sent = eventually(lambda: {path for _, path, _, _ in proxy.relayed} >=
                      {"/v1/peer/messages", "/v1/peer/messages/batch"} and list(proxy.relayed))
    for method, path, headers, body in sent:
        if method != "POST" or not path.startswith("/v1/peer/messages"):
            continue
        refused_and_unchanged(b3, lambda path=path, headers=headers, body=body: requests.post(
            b3.url + path, data=body, headers=headers, timeout=10), 401, "unauthorized")

