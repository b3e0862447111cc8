"""Fault campaigns 3 and 4 against real validators: the disk fills; clocks disagree; the master
kills a worker stuck mid-request."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import requests

from cli.local import LocalBank
from tchain.auth import REQUEST_WINDOW_MS, authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.intents import sign_intent
from tchain.rules import TIME_WINDOW_MS
from tests.campaign import report
from tests.fault_proxy import FaultProxy
from tests.realbanks import (
    assert_every_chain_sound,
    balance,
    eventually,
    pay,
    pay_across_held,
    read,
    register,
    signed_get,
    snapshot_from,
    totals,
    worker_pids,
)
from validator.operator import deposit, run_audit

FULL = "full.example"


def test_a_full_store_answers_503_changes_nothing_serves_reads_and_recovers(tmp_path):
    bank = LocalBank(tmp_path / "bank", FULL,
                     extra_args=("--max-store-size", "2M", "--rate-limit", "0"))
    usd = f"{FULL}:USD"
    with bank:
        alice, bob = register(bank, "alice"), register(bank, "bob")
        deposit(bank.config, "alice", "1000000", "USD")
        accepted = 0
        for _ in range(5000):
            r = pay(bank, alice, bob, FULL, 1, usd)
            if r.status_code != 201:
                break
            accepted += 1
        assert r.status_code == 503, r.text
        assert r.headers["Content-Type"] == "application/json"
        assert r.json()["error"] == "storage_full"
        before = read(bank, snapshot_from)
        for _ in range(3):  # refused again and again, and nothing changes
            assert pay(bank, alice, bob, FULL, 1, usd).status_code == 503
        assert read(bank, snapshot_from) == before
        # Reads go on while the store is full.
        state = signed_get(bank, alice.key, f"/v1/chains/{alice.chain}")
        assert state.status_code == 200 and state.json()["height"] == accepted + 1
        assert requests.get(f"{bank.url}/federation?q=bob*{FULL}&type=name",
                            timeout=10).status_code == 200
        # The operator gives it space: the same bank, a larger limit.
        bank.stop()
        bank.extra_args = ("--max-store-size", "64M", "--rate-limit", "0")
        bank.start()
        r = pay(bank, alice, bob, FULL, 1, usd)
        assert r.status_code == 201, r.text
        assert balance(bank, bob, usd) == (accepted + 1, 0)
        assert_every_chain_sound(bank)
        assert totals(bank)[usd] == 0
        assert run_audit(bank.config).ok
    report("disk full", payments_before_full=accepted, refused_while_full=4, recovered=True)


def test_customer_clock_skew_within_the_window_is_accepted_beyond_it_refused(tmp_path):
    name = "skew.example"
    usd = f"{name}:USD"
    with LocalBank(tmp_path / "bank", name) as bank:
        alice, bob = register(bank, "alice"), register(bank, "bob")
        deposit(bank.config, "alice", "1000", "USD")
        margin = 10_000  # well clear of the test's own latency
        for skew in (TIME_WINDOW_MS + margin, -TIME_WINDOW_MS - margin):
            before = read(bank, snapshot_from)
            doc = sign_intent(alice.key, "payment", alice.chain, alice.seq + 1, now_ms() + skew,
                              {"to": bob.chain, "to_validator": name, "asset": usd,
                               "amount": "1"})
            r = requests.post(bank.url + "/v1/intents", data=canonical(doc), timeout=10)
            assert r.status_code == 400 and r.json()["error"] == "stale_time", r.text
            assert r.json()["validator_time"] > 0  # so the client can see its clock is off
            assert read(bank, snapshot_from) == before
        for skew in (TIME_WINDOW_MS - margin, -TIME_WINDOW_MS + margin):
            doc = sign_intent(alice.key, "payment", alice.chain, alice.seq + 1, now_ms() + skew,
                              {"to": bob.chain, "to_validator": name, "asset": usd,
                               "amount": "1"})
            r = requests.post(bank.url + "/v1/intents", data=canonical(doc), timeout=10)
            assert r.status_code == 201, r.text
            alice.seq += 1
        assert balance(bank, bob, usd) == (2, 0)
        path = f"/v1/chains/{alice.chain}"
        for skew, status in ((REQUEST_WINDOW_MS - margin, 200), (-REQUEST_WINDOW_MS + margin, 200),
                             (REQUEST_WINDOW_MS + margin, 401),
                             (-REQUEST_WINDOW_MS - margin, 401)):
            header = authorization_header(alice.key, "GET", path, "", b"", now_ms() + skew,
                                          bank=name)
            r = requests.get(bank.url + path, headers={"Authorization": header}, timeout=10)
            assert r.status_code == status, (skew, r.text)


def test_a_worker_killed_mid_request_loses_nothing(tmp_path):
    """The peer holds bank 1's at-once delivery open; meanwhile both of bank 1's workers freeze
    (SIGSTOP) inside the customer's request, after the hold committed, and the master kills
    them once their event loops have not beaten for --timeout. The customer gets no answer;
    the payment completes through the outbox once the peer answers, and the intent, sent
    again, is refused as a replay."""
    b1_name, b2_name = "bank1.example", "bank2.example"
    usd = f"{b1_name}:USD"
    proxy = FaultProxy(hold=4.0)
    b1 = LocalBank(tmp_path / "b1", b1_name, extra_args=("--timeout", "2"))
    b2 = LocalBank(tmp_path / "b2", b2_name, public_url=proxy.url)
    proxy.start(b2.port)
    try:
        with b1, b2:
            alice, bob, doc = pay_across_held(b1, b2, proxy)
            answers: list[Any] = []

            def customer() -> None:
                try:
                    answers.append(requests.post(b1.url + "/v1/intents", data=canonical(doc),
                                                 timeout=30).status_code)
                except requests.ConnectionError as e:
                    answers.append(e)

            request = threading.Thread(target=customer)
            request.start()
            eventually(lambda: balance(b1, alice, usd) == (1000, 300), timeout=10)
            frozen = worker_pids(b1)
            for pid in frozen:  # the request is in the peer's hands: freeze them
                os.kill(pid, signal.SIGSTOP)
            request.join(30)
            assert len(answers) == 1 and isinstance(answers[0], requests.ConnectionError), \
                f"the customer should have had no answer, got {answers}"
            assert balance(b1, alice, usd) == (1000, 300)  # the hold committed before
            proxy.heal()
            eventually(lambda: balance(b1, alice, usd) == (700, 0), timeout=60)
            assert balance(b2, bob, usd) == (300, 0)
            again = requests.post(b1.url + "/v1/intents", data=canonical(doc), timeout=30)
            assert again.status_code == 409, again.text
            assert balance(b2, bob, usd) == (300, 0)
            assert totals(b1, b2)[usd] == 0
            for bank in (b1, b2):
                assert_every_chain_sound(bank)
            log = b1.log.read_text()
            for pid in frozen:  # the master saw them stuck, killed them and started others
                assert f"worker {pid}: its event loop has not beaten for" in log
                assert f"worker {pid} was killed by SIGKILL" in log
            assert not set(frozen) & set(worker_pids(b1))
    finally:
        proxy.close()
