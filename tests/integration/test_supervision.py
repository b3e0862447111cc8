"""The operator's processes, supervised: the outbox sender started again when it dies, one
``serve`` per data directory, nothing imported from the working directory, a graceful stop,
and ``GET /health`` saying what runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from cli.local import LocalBank, free_port
from tchain.encoding import canonical
from tests.fault_proxy import FaultProxy
from tests.realbanks import (
    balance,
    eventually,
    health,
    pay,
    pay_across_held,
    register,
    shadow_core,
    totals,
)
from validator.operator import deposit
from validator.peers import add_peer

B1, B2 = "bank1.example", "bank2.example"
USD = f"{B1}:USD"


def _sender_pid(bank: LocalBank) -> int:
    pid = health(bank)["sender"]["pid"]
    assert pid, "no sender runs"
    return int(pid)


def test_a_killed_sender_is_started_again_logged_and_delivers(tmp_path):
    """kill -9 of the outbox sender: the master logs its death and starts another, and a
    cross-bank payment whose at-once delivery failed is then delivered by the new one."""
    proxy = FaultProxy()
    b1 = LocalBank(tmp_path / "b1", B1)
    b2 = LocalBank(tmp_path / "b2", B2, public_url=proxy.url)
    proxy.start(b2.port)
    try:
        with b1, b2:
            add_peer(b1.config, proxy.url)
            add_peer(b2.config, b1.url)
            alice, bob = register(b1, "alice"), register(b2, "bob")
            deposit(b1.config, "alice", "1000", "USD")
            killed = _sender_pid(b1)
            os.kill(killed, signal.SIGKILL)
            report = eventually(lambda: (h := health(b1))["sender"]["restarts"] == 1 and
                                h["sender"]["alive"] and h, timeout=20)
            assert report["sender"]["pid"] != killed and report["status"] == "ok"
            log = b1.log.read_text()
            assert f"outbox sender {killed} was killed by SIGKILL" in log
            assert f"outbox sender {report['sender']['pid']} started again" in log
            proxy.set(drop=1.0)  # the worker's at-once delivery fails: the sender must do it
            r = pay(b1, alice, bob, B2, 300, USD)
            assert r.status_code == 202, r.text
            proxy.heal()
            eventually(lambda: balance(b1, alice, USD) == (700, 0), timeout=60)
            assert balance(b2, bob, USD) == (300, 0)
            assert totals(b1, b2)[USD] == 0
    finally:
        proxy.close()


def test_health_is_degraded_while_the_sender_is_gone_and_ok_again_after(tmp_path):
    """Killed again and again, the sender is started after a growing wait: meanwhile /health
    answers 503 degraded and says why; then 200 ok again."""
    with LocalBank(tmp_path / "bank", B1) as bank:
        first = health(bank)
        assert first["status"] == "ok" and first["problems"] == []
        assert first["store"] == {"open": True, "ok": True}
        assert first["outbox"] == {"backlog": 0, "stuck": {}}
        assert 0 <= first["readers"]["in_use"] < first["readers"]["max"] == 256
        assert first["sender"]["alive"] and first["sender"]["last_beat_ms_ago"] < 5_000
        seen: list[dict[str, Any]] = []
        for _ in range(6):  # waits of 0.5, 1, 2, 4... s: one of them is seen
            killed = _sender_pid(bank)
            os.kill(killed, signal.SIGKILL)
            r = requests.get(bank.url + "/health", timeout=10)
            while r.status_code == 503:
                seen.append(r.json())
                r = requests.get(bank.url + "/health", timeout=10)
            if seen:
                break
            eventually(lambda old=killed: (s := health(bank)["sender"])["alive"]
                       and s["pid"] != old, timeout=30)
        assert seen, "never saw the sender gone"
        assert seen[0]["status"] == "degraded" and not seen[0]["sender"]["alive"]
        assert "the outbox sender is not running" in seen[0]["problems"][0]
        eventually(lambda: health(bank)["status"] == "ok", timeout=60)


def test_a_second_serve_on_the_same_data_is_refused_in_one_sentence(tmp_path):
    with LocalBank(tmp_path / "bank", B1) as bank:
        second = subprocess.Popen(
            [sys.executable, "-P", "-m", "cli", "validator", "serve", "--data", str(bank.data),
             "--port", str(free_port())],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, stderr = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                os.killpg(second.pid, signal.SIGKILL)
                second.wait()
        assert second.returncode == 1, stderr
        assert f"{bank.data} is already served by another `tchain validator serve` (pid " \
               f"{bank.process.pid})" in stderr
        assert len(stderr.strip().splitlines()) == 1, stderr
        assert health(bank)["status"] == "ok"  # the first one serves on


def test_serve_imports_nothing_from_its_working_directory(tmp_path, monkeypatch):
    """Started from a directory holding a folder named tchain, the bank and its sender run."""
    monkeypatch.chdir(shadow_core(tmp_path / "home"))
    with LocalBank(tmp_path / "bank", B1) as bank:
        alice = register(bank, "alice")
        assert alice.chain
        report = eventually(lambda: (h := health(bank))["sender"]["last_beat_ms_ago"] < 1_000
                            and h, timeout=20)
        assert report["status"] == "ok" and report["sender"]["restarts"] == 0
    assert "Error" not in bank.log.read_text()


@pytest.mark.parametrize("how", ["SIGTERM to the master", "SIGINT to the group"])
def test_a_stop_lets_the_request_in_progress_finish_and_leaves_nothing(tmp_path, how):
    """Stopped while a customer's payment waits on its peer, the bank answers it, then every
    process exits (exit code 0) and the data directory is free for the next serve."""
    proxy = FaultProxy(hold=3.0)
    b1 = LocalBank(tmp_path / "b1", B1)
    b2 = LocalBank(tmp_path / "b2", B2, public_url=proxy.url)
    proxy.start(b2.port)
    try:
        with b2:
            b1.start()
            alice, _, doc = pay_across_held(b1, b2, proxy)
            answers: list[Any] = []
            customer = threading.Thread(target=lambda: answers.append(requests.post(
                b1.url + "/v1/intents", data=canonical(doc), timeout=30)))
            customer.start()
            eventually(lambda: balance(b1, alice, USD) == (1000, 300), timeout=10)
            assert b1.process is not None
            processes = [b1.process.pid, *_children(b1.process.pid)]
            if how == "SIGTERM to the master":
                os.kill(b1.process.pid, signal.SIGTERM)
            else:
                os.killpg(b1.process.pid, signal.SIGINT)
            customer.join(30)
            assert answers and answers[0].status_code == 202, answers
            assert b1.process.wait(timeout=30) == 0
            eventually(lambda: not [p for p in processes if Path(f"/proc/{p}").exists()])
            b1.process = None
            proxy.heal()
            b1.start()  # the data directory is free again; the payment completes
            eventually(lambda: balance(b1, alice, USD) == (700, 0), timeout=60)
            b1.stop()
        assert "Traceback" not in b1.log.read_text()
    finally:
        b1.stop()
        proxy.close()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.parametrize("storm", range(6))
def test_a_storm_of_stop_signals_is_one_stop_without_a_traceback(tmp_path, storm):
    """The group's SIGTERM and the master's arrive at each child together, and an impatient
    operator sends more: every process stops once. No late signal finds a worker's closing
    event loop (written to its closed wakeup pipe: a traceback), nor the sender inside its own
    stop (a second Event.set in the handler: a RecursionError, or a hang)."""
    bank = LocalBank(tmp_path / "b1", B1, workers=4)
    bank.start()
    assert bank.process is not None
    group = bank.process.pid
    deadline = time.monotonic() + 30
    try:
        while bank.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            time.sleep(0.0005 if storm % 2 else 0)  # and as fast as the kernel takes them
        assert bank.process.returncode == 0, "the bank did not stop within 30 s of the storm"
    finally:
        bank.stop()
    assert "Traceback" not in bank.log.read_text()
