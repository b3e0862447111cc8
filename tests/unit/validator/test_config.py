"""A bank's data directory as `tchain validator init` makes it."""

from __future__ import annotations

from tchain.model import RegisterBody, SignedEntry
from tchain.verify import verify_chain
from validator.config import init_bank, open_ledger


def test_the_bank_chain_registered_at_init_names_its_own_bank(tmp_path):
    config = init_bank(tmp_path / "bank", name="bank7.example", url="http://127.0.0.1:9")
    ledger = open_ledger(config)
    try:
        chain = ledger.bank_chain()
        assert chain is not None
        with ledger.store.read() as r:
            entries = r.entries(chain, 0, 10)
    finally:
        ledger.store.close()
    [genesis] = [SignedEntry.from_bytes(raw) for raw in entries]
    assert genesis.intent is not None and isinstance(genesis.intent.body, RegisterBody)
    assert genesis.intent.body.name == genesis.intent.body.bank == "bank7.example"
    verify_chain(entries, config.signing_key().public_key, "bank7.example", chain)
