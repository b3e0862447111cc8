"""Who an entry of the customer's chain was with, from the entry alone.

A chain names other chains by id, and a person knows them by address. The entry says which
chain and which bank: a credit carries the payer's signed debit (its chain, its bank's key),
a payment names its payee's chain and bank, a settle carries the other bank's entry that did
the other side. The wallet then asks that bank's federation (``GET /federation?type=id``)
for the address and keeps what it learns (cli.session).
"""

from __future__ import annotations

from dataclasses import dataclass

from tchain.model import LockBody, PaymentBody, RedeemBody, SignedEntry, TakeBody

__all__ = ["Party", "party_of"]


@dataclass(frozen=True)
class Party:
    """The other side of an entry: ``role`` ``from``, ``to`` or ``with``, and either the
    chain and its bank (by name or by key), or a ``label`` that needs no asking (an issuer's
    address, an offer)."""

    role: str
    chain: str | None = None
    bank_name: str | None = None
    bank_key: str | None = None
    label: str | None = None


def party_of(entry: SignedEntry) -> Party | None:
    """Who ``entry`` was with, or None for an entry with no other side (genesis, offer)."""
    body = entry.intent.body if entry.intent is not None else None
    if entry.kind in ("credit", "claim"):  # a claim's evidence is the lock that paid it
        payer = entry.evidence_entry(0)
        return Party("from", payer.chain_id, bank_key=payer.validator)
    if isinstance(body, PaymentBody | LockBody):
        return Party("to", body.to, bank_name=body.to_validator, bank_key=None if
                     body.to_validator else entry.validator)
    if isinstance(body, RedeemBody):
        return Party("to", label=body.asset.issuer)
    if isinstance(body, TakeBody):
        return Party("with", label=f"offer {body.offer[:16]} at {body.validator}")
    if entry.kind == "cancel" and entry.intent is not None:
        return Party("with", label=f"offer {entry.intent.doc['intent']['body']['offer'][:16]}")
    if entry.kind == "settle":
        peer = entry.evidence_entry(0)  # the payee's credit, the maker's settle, the take
        return Party("to" if peer.kind in ("credit", "claim") else "with", peer.chain_id,
                     bank_key=peer.validator)
    if entry.kind == "release":
        held = party_of(entry.evidence_entry(0))
        return held
    return None
