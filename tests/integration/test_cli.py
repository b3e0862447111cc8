"""The real ``tchain`` command (a subprocess) against a real validator on loopback."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tchain.encoding import canonical, parse
from tchain.model import SignedEntry
from tests.helpers import BANK, USD
from tests.realbanks import shadow_core


def tchain(*args: str, wallet: Path | None = None, check: bool = True,
           passphrase: str = "correct horse", cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TCHAIN_PASSPHRASE": passphrase}
    if wallet is not None:
        env["TCHAIN_WALLET"] = str(wallet)
    result = subprocess.run([sys.executable, "-P", "-m", "cli", *args], env=env, text=True,
                            capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"tchain {' '.join(args)} exited {result.returncode}: "
                             f"{result.stderr}")
    return result


@pytest.fixture(scope="module")
def wallets(bank, tmp_path_factory):
    base = tmp_path_factory.mktemp("wallets")
    out = {}
    for name in ("alice", "bob"):
        path = base / f"{name}.json"
        tchain("wallet", "create", wallet=path)
        registered = json.loads(tchain("register", name, "--validator", bank.url, "--json",
                                       wallet=path).stdout)
        assert registered["address"] == f"{name}*{BANK}"
        out[name] = path
    tchain("validator", "deposit", "--data", str(bank.data), f"alice*{BANK}", "5000", USD)
    return out


def balance(wallet: Path) -> dict[str, dict[str, str]]:
    return json.loads(tchain("balance", "--json", wallet=wallet).stdout)["balances"]


def test_pay_and_verified_balances(wallets):
    tchain("pay", f"bob*{BANK}", "1200", USD, "--memo", "rent", wallet=wallets["alice"])
    assert balance(wallets["alice"])[USD]["balance"] == "3800"
    assert balance(wallets["bob"])[USD]["balance"] == "1200"
    history = tchain("history", wallet=wallets["bob"]).stdout
    assert "credit" in history and "1200" in history
    verified = json.loads(tchain("verify", "--json", wallet=wallets["alice"]).stdout)
    assert verified["valid"] is True and verified["height"] == 2


def test_issue_and_redeem(wallets):
    tchain("issue", "POINTS", "70", "--to", f"bob*{BANK}", wallet=wallets["alice"])
    assert balance(wallets["bob"])[f"alice*{BANK}:POINTS"]["balance"] == "70"
    tchain("redeem", "200", USD, wallet=wallets["bob"])
    assert int(balance(wallets["bob"])[USD]["balance"]) >= 0


def test_refusal_is_one_line_and_exit_1(wallets):
    result = tchain("pay", f"bob*{BANK}", "99999999", USD, wallet=wallets["alice"], check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "insufficient_funds" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("amount", ["-5", "1.5", "abc"])
def test_bad_amount_is_refused_before_signing(wallets, amount):
    before = balance(wallets["alice"])
    result = tchain("pay", f"bob*{BANK}", amount, USD, wallet=wallets["alice"], check=False)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert balance(wallets["alice"]) == before


def test_bad_usage_exits_2(wallets):
    assert tchain("pay", wallet=wallets["alice"], check=False).returncode == 2


def test_wrong_passphrase_is_refused(wallets):
    result = tchain("balance", wallet=wallets["alice"], passphrase="wrong", check=False)
    assert result.returncode == 1 and "wrong passphrase" in result.stderr


def test_lookup_verifies_the_record(bank, wallets):
    record = json.loads(tchain("lookup", f"bob*{BANK}", "--validator", bank.url,
                               "--json").stdout)
    assert record["address"] == f"bob*{BANK}" and record["validator"] == BANK


def test_unknown_address_is_a_clean_error(wallets):
    result = tchain("pay", f"nobody*{BANK}", "1", USD, wallet=wallets["alice"], check=False)
    assert result.returncode == 1 and "not known" in result.stderr


def test_audit_passes_and_assets_sum_to_zero(bank, wallets):
    report = json.loads(tchain("validator", "audit", "--data", str(bank.data),
                               "--json").stdout)
    assert report["ok"] is True and set(report["totals"].values()) == {"0"}


def test_equivocating_bank_is_caught_and_proof_verifies(bank, wallets, tmp_path):
    """The bank signs a second, different entry at a height the wallet holds; the wallet stops
    with a security message, writes the proof, and the proof checks offline."""
    wallet = wallets["bob"]
    chain_file = wallet.with_name(wallet.name + ".chain")
    lines = chain_file.read_bytes().splitlines()
    original = chain_file.read_bytes()
    # The wallet holds, as its head, an entry the bank signed; the bank now serves another.
    forged = copy.deepcopy(SignedEntry.from_bytes(lines[-1]).doc)
    forged["entry"]["time"] += 7
    forged["sig"] = bank.config.signing_key().sign("entry", forged["entry"])
    lines[-1] = canonical(forged)
    chain_file.write_bytes(b"\n".join(lines) + b"\n")
    try:
        result = tchain("sync", wallet=wallet, check=False)
        assert result.returncode == 1 and "SECURITY" in result.stderr
        assert "Traceback" not in result.stderr
        [proof_file] = wallet.parent.glob("equivocation-*.json")
        ok = tchain("proof", "verify", str(proof_file))
        assert ok.stdout.startswith("valid equivocation proof")
        proof = parse(proof_file.read_bytes())
        proof["entries"][1]["entry"]["time"] += 1
        bad = tmp_path / "tampered.json"
        bad.write_bytes(canonical(proof))
        result = tchain("proof", "verify", str(bad), check=False)
        assert result.returncode == 1 and "does not verify" in result.stderr
    finally:
        chain_file.write_bytes(original)


def test_demo_runs_and_says_every_asset_sums_to_zero(tmp_path):
    """Run from a directory holding a folder named tchain: the banks the demo starts import
    nothing from it (they run as python -P)."""
    result = tchain("demo", cwd=shadow_core(tmp_path))
    assert "every asset sums to zero over all banks" in result.stdout
    assert "non-settlement proof ... ok" in result.stdout
    assert "lists 150.00 USD ... ok" in result.stdout  # a partial fill, heard of by the peer
    assert "the swap is done, all or nothing ... ok" in result.stdout  # two hash-time locks
    assert "the plan completes ... ok" in result.stdout  # a plan across three banks
