"""Building signed intents: the one place where a client-side intent document is made.

Used by the wallet, by the bank for its own chain (deposits) and by tests, so every signed
intent in the project has the exact shape of PROTOCOL.md §3.
"""

from __future__ import annotations

from typing import Any

from tchain.digest import sha256_hex
from tchain.encoding import canonical
from tchain.keys import SigningKey

__all__ = ["kyc_hash", "register_request", "sign_intent"]


def sign_intent(key: SigningKey, type_: str, chain: str, seq: int, time: int,
                body: dict[str, Any]) -> dict[str, Any]:
    """A signed intent ``{"intent": {...}, "sig"}`` for an existing chain."""
    intent = {"type": type_, "chain": chain, "seq": seq, "time": time, "body": body}
    return {"intent": intent, "sig": key.sign("intent", intent)}


def kyc_hash(record: dict[str, Any] | None) -> str | None:
    """The hex SHA-256 of the canonical KYC record, as the register intent carries it."""
    return None if record is None else sha256_hex(canonical(record))


def register_request(key: SigningKey, name: str, time: int, *, bank: str,
                     kyc_record: dict[str, Any] | None, params: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """The body of ``POST /v1/chains``: a signed register intent and the private KYC record.

    ``bank`` is the name of the bank the chain is opened at; every other bank refuses the
    intent, so the signed registration cannot be replayed elsewhere.
    """
    intent = {"type": "register", "seq": 0, "time": time,
              "body": {"name": name, "bank": bank, "owner": key.public_key,
                       "kyc": kyc_hash(kyc_record), "params": params or {}}}
    doc: dict[str, Any] = {"intent": intent, "sig": key.sign("intent", intent)}
    if kyc_record is not None:
        doc["kyc_record"] = kyc_record
    return doc
