"""Signed chain status: the bank's answer to ``GET /v1/chains/{id}``, bound to the request.

The status (height, head, seq, balances) is signed by the bank (digest kind ``status``) together
with the time it was made (``as_of``) and the signature of the customer's own request
(``request``). A wallet accepts only a status that answers the request it just signed, so an
old answer replayed by anyone between it and its bank (a freeze, as in TUF's freeze attack) is
refused, and a bank that later contradicts a status it signed can be shown to have lied.
"""

from __future__ import annotations

from typing import Any

from tchain.errors import SignatureError, VerificationError
from tchain.keys import SigningKey, verify

__all__ = ["sign_status", "verify_status"]


def sign_status(key: SigningKey, status: dict[str, Any], *, request: str, now: int
                ) -> dict[str, Any]:
    """``status`` with ``as_of``, ``request`` and the bank's ``sig`` added."""
    doc = {**status, "as_of": now, "request": request}
    return {**doc, "sig": key.sign("status", doc)}


def verify_status(bank_key: str, answer: Any, *, request: str) -> dict[str, Any]:
    """Check a signed status answers ``request`` (our request's signature); return it.

    Raises:
        VerificationError: unsigned, badly signed, or the answer to another request.
    """
    if not isinstance(answer, dict) or "sig" not in answer:
        raise VerificationError("the chain status is not signed by the bank")
    doc = {k: v for k, v in answer.items() if k != "sig"}
    try:
        verify(bank_key, "status", doc, answer["sig"])
    except SignatureError as e:
        raise VerificationError(f"the chain status signature does not verify: {e.message}"
                                ) from e
    if doc.get("request") != request:
        raise VerificationError("the chain status answers another request than ours: an old "
                                "answer replayed (a freeze)")
    return doc
