"""The operator's commands that act on a bank's data directory directly (the CLI calls these).

They open the same LMDB environment the server uses (LMDB is multi-process safe), so they work
while the validator serves.
"""

from __future__ import annotations

from typing import Any

from tchain.errors import (
    NotFoundError,
    UnknownAssetError,
)
from tchain.keys import check_public_key
from tchain.route import Terms
from tchain.rules import Outcome
from tchain.values import UAI, parse_positive_amount
from validator.audit import AuditReport, audit
from validator.config import BankConfig, open_ledger
from validator.route import set_terms
from validator.store import Writer

__all__ = ["add_regulator", "bank_names", "deposit", "list_proofs", "list_regulators",
           "remove_regulator", "run_audit", "set_correspondent"]


def deposit(config: BankConfig, address: str, amount: str, asset: str,
            memo: str | None = None) -> Outcome:
    """Issue the bank's IOU to a customer (``alice`` is short for ``alice*<bank>``)."""
    if "*" not in address and address != config.name:
        address = f"{address}*{config.name}"
    if ":" not in asset:
        asset = f"{config.name}:{asset}"
    uai = UAI.parse(asset)
    if uai.issuer == config.name and uai.code not in config.assets:
        raise UnknownAssetError(f"{config.name} issues {', '.join(config.assets)}, not {uai.code}")
    ledger = open_ledger(config)
    try:
        return ledger.deposit(address, str(uai), parse_positive_amount(amount), memo)
    finally:
        ledger.store.close()


def add_regulator(config: BankConfig, public_key: str) -> bool:
    """Let ``public_key`` read every chain; False if it already could."""
    check_public_key(public_key)
    ledger = open_ledger(config)
    try:
        def work(w: Writer) -> bool:
            return w.add_regulator(public_key)
        return ledger.store.write(work)
    finally:
        ledger.store.close()


def list_regulators(config: BankConfig) -> list[str]:
    """The regulator keys that may read every chain."""
    ledger = open_ledger(config)
    try:
        with ledger.store.read() as r:
            return r.regulators()
    finally:
        ledger.store.close()


def remove_regulator(config: BankConfig, public_key: str) -> None:
    """Take back a regulator key's right to read every chain (at once: each read checks it).

    Raises:
        NotFoundError: the key is not a regulator here.
    """
    check_public_key(public_key)
    ledger = open_ledger(config)
    try:
        def work(w: Writer) -> bool:
            return w.delete_regulator(public_key)
        if not ledger.store.write(work):
            raise NotFoundError(f"{public_key} is not a regulator of {config.name}")
    finally:
        ledger.store.close()


def run_audit(config: BankConfig) -> AuditReport:
    ledger = open_ledger(config)
    try:
        return audit(ledger)
    finally:
        ledger.store.close()


def bank_names(config: BankConfig) -> dict[str, str]:
    """The banks this bank knows, name by key: itself, its peers and its former peers (a
    proof may be about a peer let go since)."""
    ledger = open_ledger(config)
    try:
        with ledger.store.read() as r:
            known = [*r.former_peers(), *r.peers()]
    finally:
        ledger.store.close()
    return {**{p["key"]: p["name"] for p in known},
            ledger.bank.public_key: config.name}


def list_proofs(config: BankConfig) -> list[dict[str, Any]]:
    """Every proof the bank holds, complete, as peers and regulators get them."""
    ledger = open_ledger(config)
    try:
        with ledger.store.read() as r:
            return [proof for _, proof in r.records("proofs")]
    finally:
        ledger.store.close()


def set_correspondent(config: BankConfig, terms: Terms | None) -> None:
    """Publish (or, with None, withdraw) this bank's terms as a correspondent: its well-known
    document shows them from the next request on (docs/adr/0015-correspondent-routes.md)."""
    ledger = open_ledger(config)
    try:
        def work(w: Writer) -> None:
            set_terms(w, terms)
        ledger.store.write(work)
    finally:
        ledger.store.close()
