"""Recovering a lost key with the bank's help, as a customer does it with the CLI: a new wallet
asks with the KYC record, the old key is warned and may cancel, and after the delay the new
wallet owns the chain and its money."""

from __future__ import annotations

import time

from cli.local import LocalBank
from tests.realwallets import customer, ok, run, run_json

BANK = "bank1.example"


def test_a_lost_key_is_recovered_and_a_recovery_not_asked_for_is_cancelled(tmp_path):
    with LocalBank(tmp_path / "bank1", BANK) as bank:
        old = customer(tmp_path, "alice", bank, "1000", "--legal-name", "Alice Smith",
                       "--recovery-delay", "2")
        new = tmp_path / "new.json"
        ok("wallet", "create", wallet=new)
        ok("wallet", "create", wallet=tmp_path / "other.json")
        wrong = run("wallet", "recover", f"alice*{BANK}", "--validator", bank.url,
                    "--legal-name", "Alice Smyth", wallet=tmp_path / "other.json")
        assert wrong.exit_code == 1 and "KYC record" in wrong.stderr, wrong.stderr
        asked = run_json("wallet", "recover", f"alice*{BANK}", "--validator", bank.url,
                         "--legal-name", "Alice Smith", wallet=new)
        warned = ok("balance", wallet=old)
        assert "WARNING: someone asked your bank to give your chain" in warned.stderr
        ok("recovery", "cancel", wallet=old)  # it was not alice: refused in time
        time.sleep(2.5)
        assert ok("balance", wallet=old).stderr.find("WARNING") == -1
        again = tmp_path / "again.json"
        ok("wallet", "create", wallet=again)
        asked = run_json("wallet", "recover", f"alice*{BANK}", "--validator", bank.url,
                         "--legal-name", "Alice Smith", wallet=again)
        time.sleep(max(0.0, asked["effective"] / 1000 - time.time()) + 1.5)
        ok("sync", "--rebuild", wallet=again)
        balance = run_json("balance", wallet=again)
        assert balance["balances"][f"{BANK}:USD"]["balance"] == "1000"
        assert run("pay", f"alice*{BANK}", "1", f"{BANK}:USD", wallet=old).exit_code == 1
