"""Peer trust between real validators on loopback: pinning from the signed well-known."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from cli.local import LocalBank
from federation.records import verify_well_known
from tests.realbanks import balance, eventually, pay, register, totals
from validator.operator import deposit, run_audit
from validator.peers import add_peer


def tchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-P", "-m", "cli", *args], text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    base = tmp_path_factory.mktemp("peers")
    with LocalBank(base / "b1", "bank1.example") as b1, \
            LocalBank(base / "b2", "bank2.example") as b2:
        yield b1, b2


def served_peers(bank) -> list[dict[str, str]]:
    signed = requests.get(bank.url + "/.well-known/tchain.json", timeout=10).json()
    return verify_well_known(signed)["peers"]


def test_peer_add_pins_the_key_and_takes_effect_without_restart(banks):
    b1, b2 = banks
    result = tchain("validator", "peer", "add", "--data", str(b1.data), b2.url, "--json")
    assert result.returncode == 0, result.stderr
    pinned = json.loads(result.stdout)
    assert pinned["added"] is True
    assert pinned["key"] == b2.config.signing_key().public_key
    assert served_peers(b1) == [{"name": "bank2.example", "key": pinned["key"],
                                 "url": b2.url}]
    again = json.loads(tchain("validator", "peer", "add", "--data", str(b1.data), b2.url,
                              "--json").stdout)
    assert again["added"] is False


def test_a_bank_is_not_its_own_peer(banks):
    b1, _ = banks
    result = tchain("validator", "peer", "add", "--data", str(b1.data), b1.url)
    assert result.returncode == 1 and "not its own peer" in result.stderr


def test_an_impostor_with_a_pinned_name_and_another_key_is_refused(banks, tmp_path):
    b1, b2 = banks
    tchain("validator", "peer", "add", "--data", str(b1.data), b2.url)
    with LocalBank(tmp_path / "fake", "bank2.example") as impostor:
        result = tchain("validator", "peer", "add", "--data", str(b1.data), impostor.url)
    assert result.returncode == 1 and "refusing to change a pinned key" in result.stderr
    assert [p["key"] for p in served_peers(b1)] == [b2.config.signing_key().public_key]


def test_an_unreachable_peer_is_a_clean_error(banks):
    b1, _ = banks
    result = tchain("validator", "peer", "add", "--data", str(b1.data), "http://127.0.0.1:9")
    assert result.returncode == 1 and result.stderr.startswith("error: cannot reach")
    assert "Traceback" not in result.stderr


def test_peer_list_shows_each_pinned_bank_and_its_key(banks):
    b1, b2 = banks
    tchain("validator", "peer", "add", "--data", str(b1.data), b2.url)
    listed = tchain("validator", "peer", "list", "--data", str(b1.data))
    assert listed.returncode == 0, listed.stderr
    key = b2.config.signing_key().public_key
    assert "bank2.example" in listed.stdout and key in listed.stdout and b2.url in listed.stdout
    as_json = json.loads(tchain("validator", "peer", "list", "--data", str(b1.data),
                                "--json").stdout)
    assert [(p["name"], p["key"]) for p in as_json] == [("bank2.example", key)]


def test_a_peer_with_money_between_the_banks_goes_only_by_force_and_strands_nothing(tmp_path):
    """Refused (one sentence) while the position is not zero and while a payment waits on the
    peer; forced, the peer is gone from the well-known and the list, the audit still knows its
    key, and once it is pinned again the payment ends on its answer."""
    b3_usd = "bank3.example:USD"
    with LocalBank(tmp_path / "b3", "bank3.example") as b3, \
            LocalBank(tmp_path / "b4", "bank4.example") as b4:
        add_peer(b3.config, b4.url)
        add_peer(b4.config, b3.url)
        alice, bob = register(b3, "alice"), register(b4, "bob")
        deposit(b3.config, "alice", "1000", "USD")
        assert pay(b3, alice, bob, b4.name, 250, b3_usd).status_code == 201
        remove = ("validator", "peer", "remove", "--data", str(b3.data), b4.name)
        held = tchain(*remove)
        assert held.returncode == 1 and held.stderr.count("\n") == 1, held.stderr
        assert "held 250" in held.stderr and "--force" in held.stderr
        b4.stop()
        assert pay(b3, alice, bob, b4.name, 100, b3_usd).status_code == 202
        waiting = tchain(*remove)
        assert waiting.returncode == 1 and "1 flow in flight" in waiting.stderr, waiting.stderr
        forced = tchain(*remove, "--force", "--json")
        assert forced.returncode == 0, forced.stderr
        assert forced.stderr.startswith("WARNING: bank4.example was removed with 1 flow")
        gone = json.loads(forced.stdout)
        assert gone["removed"] is True and len(gone["in_flight"]) == 1
        assert served_peers(b3) == []
        assert json.loads(tchain("validator", "peer", "list", "--data", str(b3.data),
                                 "--json").stdout) == []
        report = run_audit(b3.config)
        assert report.ok, report.problems
        assert balance(b3, alice, b3_usd) == (750, 100)  # the hold stayed as it was
        b4.start()
        add_peer(b3.config, b4.url)
        eventually(lambda: balance(b3, alice, b3_usd)[1] == 0, timeout=60)
        assert totals(b3, b4)[b3_usd] == 0
        assert run_audit(b3.config).ok
