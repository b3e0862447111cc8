"""One exception root for the core, with the HTTP status and wire code each error maps to.

Errors caused by a customer or a peer (bad input, bad signature, a broken rule) carry a 4xx
status and a protocol error code, so the shell can answer them without knowing their type.
Anything else that escapes the core is our bug and becomes a 500 in the shell.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "EncodingError",
    "ForbiddenError",
    "NotFoundError",
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


class StoreFullError(StoreError):
    """The store cannot grow any further (the disk is full); nothing was committed."""

    code = "storage_full"
