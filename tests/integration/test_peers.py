"""Peer trust between real validators on loopback: pinning from the signed well-known."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from cli.local import LocalBank
from federation.records import verify_well_known


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
