"""The wallet file and the session's refusal of a rolled-back chain (a fake bank client, in a
unit test of one module; the integration tests use a real bank)."""

from __future__ import annotations

import json

import pytest

from cli.errors import SecurityError, WalletError
from cli.session import Session
from cli.wallet import BankInfo, Wallet
from tchain.model import SignedEntry
from tests.helpers import BANK, USD, join, submit


def test_key_is_sealed_and_unlocks_only_with_the_passphrase(tmp_path):
    wallet, key = Wallet.create(tmp_path / "w.json", "s3cret")
    raw = (tmp_path / "w.json").read_text()
    assert key.seed.hex() not in raw
    assert Wallet.load(tmp_path / "w.json").unlock("s3cret").public_key == key.public_key
    with pytest.raises(WalletError, match="wrong passphrase"):
        wallet.unlock("guess")


def test_an_existing_wallet_is_never_overwritten(tmp_path):
    Wallet.create(tmp_path / "w.json", "a")
    with pytest.raises(WalletError, match="refusing to overwrite"):
        Wallet.create(tmp_path / "w.json", "b")


def test_a_damaged_wallet_is_a_clean_error(tmp_path):
    (tmp_path / "w.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(WalletError, match="damaged"):
        Wallet.load(tmp_path / "w.json")


class RolledBackBank:
    """Serves only the first ``keep`` entries of a chain, and reports that height."""

    def __init__(self, ledger, keep: int) -> None:
        self.ledger, self.keep = ledger, keep

    def entries(self, chain, start, limit):
        with self.ledger.store.read() as r:
            return [json.loads(e) for e in r.entries(chain, start, min(limit, self.keep - start))]

    def chain(self, chain):
        with self.ledger.store.read() as r:
            head = json.loads(r.entries(chain, self.keep - 1, 1)[0])
        return {"height": self.keep - 1, "head": SignedEntry.from_dict(head).id, "balances": {}}


def test_wallet_refuses_a_rolled_back_chain(tmp_path, ledger, monkeypatch):
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 100)
    submit(ledger, alice, alice.payment(bob, "30"))
    wallet, _ = Wallet.create(tmp_path / "w.json", "p")
    wallet = wallet.registered(name="alice", chain=alice.chain, address=f"alice*{BANK}",
                               bank=BankInfo(BANK, "http://127.0.0.1:9",
                                             ledger.validator.public_key, ""))
    with ledger.store.read() as r:
        wallet.append_entries(r.entries(alice.chain, 0, 10))   # the wallet holds 3 entries
    session = Session(wallet, alice.key)
    fake = RolledBackBank(ledger, keep=2)
    monkeypatch.setattr(session, "_client", lambda: (alice.chain, wallet.bank, fake))
    with pytest.raises(SecurityError, match="rolled-back"):
        session.sync()
    assert len(wallet.local_entries()) == 3
