"""Recovering a lost key with the bank's help, as a customer does it with the CLI: a new wallet
asks with the KYC record and the recovery code `register` printed, the old key is warned and
may cancel, and after the delay the new wallet owns the chain and its money. And what the
third outside attacker did with the first version: a stranger who knew an address took the
chain; an owner who rotated was told all was well; an export replaced the wallet."""

from __future__ import annotations

import time
from pathlib import Path

from cli.local import LocalBank
from tests.realwallets import ok, run, run_json

BANK = "bank1.example"


def _registered(tmp_path: Path, bank: LocalBank, name: str, legal_name: str
                ) -> tuple[Path, str]:
    """A wallet registered with a KYC record, and the recovery code `register` printed."""
    wallet = tmp_path / f"{name}.json"
    ok("wallet", "create", wallet=wallet)
    answer = run_json("register", name, "--validator", bank.url, "--legal-name", legal_name,
                      "--recovery-delay", "2", wallet=wallet)
    ok("validator", "deposit", "--data", str(bank.data), f"{name}*{BANK}", "1000",
       bank.config.assets[0])
    code = answer["recovery_code"]
    assert isinstance(code, str) and len(code) == 26
    return wallet, code


def _recover(wallet: Path, bank: LocalBank, legal_name: str, code: str):
    return run("wallet", "recover", f"alice*{BANK}", "--validator", bank.url,
               "--legal-name", legal_name, "--recovery-code", code, wallet=wallet)


def test_a_lost_key_is_recovered_and_a_recovery_not_asked_for_is_cancelled(tmp_path):
    with LocalBank(tmp_path / "bank1", BANK) as bank:
        old, code = _registered(tmp_path, bank, "alice", "Alice Smith")
        shown = ok("register", "zed", "--validator", bank.url, wallet=_new(tmp_path, "zed"))
        assert "recovery code " in shown.stdout and "Write it down" in shown.stdout
        new = _new(tmp_path, "new")
        other = _new(tmp_path, "other")
        wrong = _recover(other, bank, "Alice Smyth", code)
        assert wrong.exit_code == 1 and "KYC record" in wrong.stderr, wrong.stderr
        readable = "-".join(code[i:i + 4] for i in range(0, 26, 4)).lower()
        assert _recover(new, bank, "Alice Smith", readable).exit_code == 0  # as written down
        warned = ok("balance", wallet=old)
        assert "WARNING: someone asked your bank to give your chain" in warned.stderr
        ok("recovery", "cancel", wallet=old)  # it was not alice: refused in time
        time.sleep(2.5)
        assert ok("balance", wallet=old).stderr.find("WARNING") == -1
        again = _new(tmp_path, "again")
        asked = run_json("wallet", "recover", f"alice*{BANK}", "--validator", bank.url,
                         "--legal-name", "Alice Smith", "--recovery-code", code, wallet=again)
        time.sleep(max(0.0, asked["effective"] / 1000 - time.time()) + 1.5)
        ok("sync", "--rebuild", wallet=again)
        balance = run_json("balance", wallet=again)
        assert balance["balances"][f"{BANK}:USD"]["balance"] == "1000"
        assert run("pay", f"alice*{BANK}", "1", f"{BANK}:USD", wallet=old).exit_code == 1
        told = run("balance", wallet=old)  # the old wallet is told what happened
        assert told.exit_code == 1 and "now belongs to the key" in told.stderr, told.stderr


def _new(tmp_path: Path, name: str) -> Path:
    wallet = tmp_path / f"{name}.json"
    ok("wallet", "create", wallet=wallet)
    return wallet


def test_a_stranger_who_knows_the_address_and_the_name_gets_nothing(tmp_path):
    """The third outside attacker's takeover: `register` made the KYC record the customer's
    name alone, so `wallet recover ADDRESS --legal-name NAME` took the chain. Without the
    recovery code it is refused; a chain registered with a record that names only a person
    cannot be recovered at all, and the bank's own chain never."""
    with LocalBank(tmp_path / "bank1", BANK) as bank:
        _registered(tmp_path, bank, "alice", "alice")
        stranger = _new(tmp_path, "stranger")
        guessed = _recover(stranger, bank, "alice", "A" * 26)
        assert guessed.exit_code == 1 and "KYC record" in guessed.stderr, guessed.stderr
        ours = run("wallet", "recover", BANK, "--validator", bank.url, "--legal-name", BANK,
                   "--recovery-code", "A" * 26, wallet=_new(tmp_path, "bankthief"))
        assert ours.exit_code == 1, ours.stderr


def test_a_rotation_while_a_recovery_waits_is_refused_with_what_to_do(tmp_path):
    """A new key does not stop a recovery: the owner is sent to `tchain recovery cancel`."""
    with LocalBank(tmp_path / "bank1", BANK) as bank:
        old, code = _registered(tmp_path, bank, "alice", "Alice Smith")
        assert _recover(_new(tmp_path, "thief"), bank, "Alice Smith", code).exit_code == 0
        refused = run("wallet", "rotate", wallet=old)
        assert refused.exit_code == 1 and "recovery cancel" in refused.stderr, refused.stderr
        ok("recovery", "cancel", wallet=old)
        ok("wallet", "rotate", wallet=old)


def test_an_export_does_not_replace_the_wallet_or_what_is_not_a_file(tmp_path):
    with LocalBank(tmp_path / "bank1", BANK) as bank:
        wallet, _ = _registered(tmp_path, bank, "alice", "Alice Smith")
        before = wallet.read_bytes()
        for target in (wallet, Path(f"{wallet}.chain"), Path(f"{wallet}.lock"), tmp_path):
            refused = run("export", str(target), wallet=wallet)
            assert refused.exit_code in (1, 2), (target, refused.stderr)
        assert wallet.read_bytes() == before
        ok("balance", wallet=wallet)
        assert ok("export", str(tmp_path / "backup.jsonl"), wallet=wallet).exit_code == 0
