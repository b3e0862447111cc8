"""One exception root for the core, with the HTTP status and wire code each error maps to.

Errors caused by a customer or a peer (bad input, bad signature, a broken rule) carry a 4xx
status and a protocol error code, so the shell can answer them without knowing their type.
Anything else that escapes the core is our bug and becomes a 500 in the shell.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BooksError",
    "EncodingError",
    "ForbiddenError",
    "ForeignAssetError",
    "MisconductError",
    "NotFoundError",
    "PositionError",
    "PositionPendingError",
    "RateLimitedError",
    "RuleError",
    "SignatureError",
    "StoreError",
    "StoreFullError",
    "TChainError",
    "VerificationError",
]


class TChainError(Exception):
    """Root of every error the core raises on purpose.

    Attributes:
        code: the protocol error code (PROTOCOL.md §6), e.g. ``bad_seq``.
        status: the HTTP status a server answers with.
        detail: extra fields for the JSON error body (``expected`` for ``bad_seq``).
    """

    code = "internal"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if self.code == "bad_request":  # PROTOCOL.md §6: always 400, whatever raised it
            self.status = 400
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: ``{"error", "message"}`` plus any detail fields."""
        return {"error": self.code, "message": self.message, **self.detail}


class EncodingError(TChainError):
    """The bytes are not strict protocol JSON (floats, duplicate keys, bad amounts...)."""

    code = "bad_request"
    status = 400


class SignatureError(TChainError):
    """A signature does not verify, or a key is not a usable Ed25519 public key."""

    code = "bad_signature"
    status = 400


class RuleError(TChainError):
    """A well-formed, well-signed intent that the chain's rules refuse."""

    code = "bad_request"
    status = 422


class ForeignAssetError(RuleError):
    """The asset is issued by a bank that is neither of the two it would cross between."""

    code = "foreign_asset"
    status = 422


class PositionError(RuleError):
    """A peer hands back more of our asset than it holds, even counting every flow of ours on
    its way to it (``held``: what it holds of it by our books)."""

    code = "position_exceeded"
    status = 422


class PositionPendingError(RuleError):
    """A peer hands back more of our asset than it holds by our books now, but not more than
    it will once our flows on their way to it settle: it may be ahead of us; try later."""

    code = "position_pending"
    status = 409


class MisconductError(RuleError):
    """A peer's message that only a dishonest bank would send: refused, and the message kept
    as evidence against it (a ``misconduct`` proof). Carries the code of what it broke."""

    status = 422

    @classmethod
    def of(cls, error: TChainError) -> MisconductError:
        """The same refusal, marked as misconduct."""
        return cls(error.message, code=error.code, status=error.status, **error.detail)


class NotFoundError(TChainError):
    """The named chain, name or document does not exist here."""

    code = "not_found"
    status = 404


class AuthError(TChainError):
    """No credentials, or credentials that do not verify (HTTP 401)."""

    code = "unauthorized"
    status = 401


class ForbiddenError(TChainError):
    """Valid credentials without the right to what was asked (HTTP 403)."""

    code = "forbidden"
    status = 403


class RateLimitedError(TChainError):
    """Too many requests from one key; ``retry_after_ms`` says when the next may come."""

    code = "rate_limited"
    status = 429


class VerificationError(TChainError):
    """A chain, entry or proof fails offline verification."""

    code = "invalid"
    status = 422


class StoreError(TChainError):
    """The store could not do what was asked; nothing was committed."""

    code = "unavailable"
    status = 503


class BooksError(TChainError):
    """A write would make or lose value (the books' invariant, tchain.books): our bug, never the
    customer's or the peer's. Nothing is written."""

    code = "internal"
    status = 500


class StoreFullError(StoreError):
    """The store cannot grow any further (the disk is full); nothing was committed."""

    code = "storage_full"
