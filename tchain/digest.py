"""Digests with domain separation (PROTOCOL.md §2).

``digest(kind, doc) = SHA-256("tchain/v1/" || kind || "\\n" || JCS(doc))``. The kind keeps
domains apart: an intent signature can never be replayed as an entry, a request or a record.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tchain.encoding import canonical

__all__ = ["KINDS", "digest", "digest_canonical", "sha256_hex"]

# The kinds PROTOCOL.md fixes, and the ones docs/protocol.md adds (proofs, peer messages,
# execution plans and the signed documents of their logs).
KINDS = frozenset({"intent", "entry", "document", "request", "record", "proof", "message",
                   "status", "plan"})


def digest(kind: str, doc: Any) -> bytes:
    """The 32-byte digest of ``doc`` in the domain ``kind``."""
    return digest_canonical(kind, canonical(doc))


def digest_canonical(kind: str, data: bytes) -> bytes:
    """The digest of a document whose canonical bytes ``data`` the caller already has."""
    if kind not in KINDS:
        raise ValueError(f"digest kind {kind!r} is not one of {sorted(KINDS)}")
    return hashlib.sha256(b"tchain/v1/" + kind.encode("ascii") + b"\n" + data).digest()


def sha256_hex(data: bytes) -> str:
    """Plain SHA-256 as hex, for KYC record hashes and request bodies."""
    return hashlib.sha256(data).hexdigest()
