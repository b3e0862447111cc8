"""Signed federation documents: the bank's well-known document and address records.

Pure functions over :mod:`tchain`, used by the server to sign and by clients to check.
"""

from __future__ import annotations

from typing import Any

from tchain import PROTOCOL_VERSION
from tchain.errors import EncodingError, SignatureError, VerificationError
from tchain.keys import SigningKey, check_public_key, verify
from tchain.records import make_record
from tchain.records import verify_record as _verify_record
from tchain.route import Terms

__all__ = ["WELL_KNOWN_PATH", "make_record", "make_well_known", "verify_record",
           "verify_well_known"]

WELL_KNOWN_PATH = "/.well-known/tchain.json"
_DOCUMENT_FIELDS = {"name", "public_key", "chain", "api_url", "protocol", "assets", "peers",
                    "time"}


def make_well_known(key: SigningKey, *, name: str, chain: str, api_url: str,
                    assets: list[str], peers: list[dict[str, str]], now: int,
                    correspondent: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bank's signed self-description (``document``); a correspondent's carries its
    terms (tchain.route.Terms), absent otherwise (docs/adr/0015)."""
    document = {"name": name, "public_key": key.public_key, "chain": chain, "api_url": api_url,
                "protocol": PROTOCOL_VERSION, "assets": assets, "peers": peers, "time": now}
    if correspondent is not None:
        document["correspondent"] = correspondent
    return {"document": document, "sig": key.sign("document", document)}


def _open_signed(signed: Any, envelope: str, fields: set[str], key: str | None,
                 optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Check ``{envelope: {fields...}, "sig"}`` and its signature (by ``key``, or by the key the
    document itself names in ``public_key`` when ``key`` is None); return the inner document."""
    if not isinstance(signed, dict) or set(signed) != {envelope, "sig"}:
        raise EncodingError(f"the answer must be {{{envelope}, sig}}")
    doc = signed[envelope]
    if not isinstance(doc, dict) or not fields <= set(doc) <= fields | optional:
        raise EncodingError(f"the {envelope} must have the fields {sorted(fields)}")
    verify(key or check_public_key(doc["public_key"]).hex(), envelope, doc, signed["sig"])
    return doc


def verify_well_known(signed: Any, *, expected_key: str | None = None) -> dict[str, Any]:
    """Check a well-known document's shape and self-signature; return the document.

    A first fetch trusts the key the document names (trust on first use, then pinned); later
    fetches pass ``expected_key`` so a changed key is refused.

    Raises:
        VerificationError: saying what is wrong.
    """
    try:
        doc = _open_signed(signed, "document", _DOCUMENT_FIELDS, None,
                           frozenset({"correspondent"}))
        if "correspondent" in doc:
            Terms.from_dict(doc["correspondent"])
        if expected_key is not None and doc["public_key"] != expected_key:
            raise SignatureError(f"the bank's key is now {doc['public_key']}, "
                                 f"pinned {expected_key}")
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"bad well-known document: {e.message}") from e
    return doc


def verify_record(signed: Any, validator_key: str) -> dict[str, Any]:
    """Check a federation record against the bank's pinned key; return the record.

    Raises:
        VerificationError: saying what is wrong.
    """
    try:
        return _verify_record(signed, validator_key)
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"bad federation record: {e.message}") from e
