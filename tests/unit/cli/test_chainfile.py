"""Chain exports fed to the wallet: a faithful one restores it; hostile or truncated ones are
refused with one sentence (exit 1 from the CLI) and the wallet's copy stays byte for byte."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.chainfile import export_chain, import_chain
from cli.errors import SecurityError
from cli.main import root
from cli.wallet import BankInfo, Wallet
from tchain.model import SignedEntry
from tests.helpers import BANK, USD, join, sign_entry_as, submit


@pytest.fixture
def world(tmp_path, ledger):
    """alice's full chain (5 entries) exported, and a wallet of hers holding the first 2."""
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 100)
    for amount in ("10", "20", "30"):
        submit(ledger, alice, alice.payment(bob, amount))
    with ledger.store.read() as r:
        full = r.entries(alice.chain, 0, 100)
        bobs = r.entries(bob.chain, 0, 100)
    wallet, _ = Wallet.create(tmp_path / "w.json", "p")
    wallet = wallet.registered(name="alice", chain=alice.chain, address=f"alice*{BANK}",
                               bank=BankInfo(BANK, "http://127.0.0.1:9",
                                             ledger.bank.public_key, ""))
    wallet.append_entries(full[:2])
    return wallet, full, bobs


def lines(entries: list[bytes]) -> bytes:
    return b"".join(e + b"\n" for e in entries)


def test_a_faithful_export_restores_the_chain_and_round_trips(tmp_path, world):
    wallet, full, _ = world
    export = tmp_path / "full.jsonl"
    export.write_bytes(lines(full))
    assert import_chain(wallet, export) == 3
    assert wallet.local_entries() == full
    again = tmp_path / "again.jsonl"
    assert export_chain(wallet, again) == 5
    assert again.read_bytes() == export.read_bytes()
    assert import_chain(wallet, again) == 0  # importing what it holds adds nothing


def tampered(full: list[bytes]) -> bytes:
    doc = json.loads(full[3])
    doc["entry"]["effects"][0]["balance"] = "-1"
    return lines([*full[:3], json.dumps(doc).encode()])


HOSTILE = {
    "empty": lambda full, bobs: b"",
    "truncated mid-line": lambda full, bobs: lines(full)[:-40],
    "truncated mid-entry, newline kept": lambda full, bobs: lines(full[:3]) + full[3][:50] + b"\n",
    "not JSON": lambda full, bobs: b"\x00\xff garbage\n",
    "duplicate keys": lambda full, bobs: lines(full[:1]) + b'{"entry":{},"entry":{}}\n',
    "a float": lambda full, bobs: lines(full[:1]) + b'{"entry":1.5,"sig":"00"}\n',
    "deep nesting": lambda full, bobs: b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "a huge line": lambda full, bobs: b'"' + b"a" * (2 << 20) + b'"\n',
    "another customer's chain": lambda full, bobs: lines(bobs),
    "a spliced entry": lambda full, bobs: lines([*full[:2], bobs[2], *full[3:]]),
    "a gap": lambda full, bobs: lines([*full[:2], *full[3:]]),
    "a duplicated height": lambda full, bobs: lines([*full[:3], full[2], *full[3:]]),
    "out of order": lambda full, bobs: lines([full[0], full[2], full[1], *full[3:]]),
    "a changed effect": lambda full, bobs: tampered(full),
    "no genesis": lambda full, bobs: lines(full[1:]),
    "shorter than held (rollback)": lambda full, bobs: lines(full[:1]),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_or_truncated_export_is_refused_and_changes_nothing(tmp_path, world, name):
    wallet, full, bobs = world
    export = tmp_path / "hostile.jsonl"
    export.write_bytes(HOSTILE[name](full, bobs))
    before = wallet.chain_file.read_bytes()
    with pytest.raises(SecurityError):
        import_chain(wallet, export)
    assert wallet.chain_file.read_bytes() == before
    # The CLI says it in one sentence and exits 1.
    result = CliRunner().invoke(root, ["--wallet", str(wallet.path), "import", str(export)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert wallet.chain_file.read_bytes() == before


def test_an_export_that_forks_from_what_the_wallet_holds_is_refused(tmp_path, world, ledger):
    """A validly signed entry at a held height that differs from the one held: the bank's own
    key made it (an equivocation), and the import still refuses it."""
    wallet, full, _ = world
    held = SignedEntry.from_bytes(full[1])
    forked = dict(held.doc["entry"], time=held.doc["entry"]["time"] + 1)
    fork = sign_entry_as(ledger.bank.key, forked)
    export = tmp_path / "fork.jsonl"
    export.write_bytes(lines([full[0], fork.to_bytes()]))
    before = wallet.chain_file.read_bytes()
    with pytest.raises(SecurityError, match="differs"):
        import_chain(wallet, export)
    assert wallet.chain_file.read_bytes() == before
