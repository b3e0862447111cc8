"""One exception root for the core, and one class for each wire error code.

Errors caused by a customer or a peer (bad input, bad signature, a broken rule) carry a 4xx
status and a protocol error code, so the shell can answer them without knowing their type.
Each code of the table in docs/protocol.md §6 has exactly one class here that declares it,
with its HTTP status, under :class:`WireError` (tests/unit/tchain/test_errors.py holds the
two to the same set); a raise site names the class, never the code. The older classes stay as
the bases the shell catches: a :class:`RuleError` is any refusal by the rules, a
:class:`NotFoundError` any 404. Anything else that escapes the core is our bug and becomes a
500 in the shell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self

__all__ = [
    "AuthError",
    "BadRequestError",
    "BadRequestRuleError",
    "BadSeqError",
    "BooksError",
    "ConflictError",
    "EncodingError",
    "ExpiredError",
    "ForbiddenError",
    "ForeignAssetError",
    "HeadersTooLargeError",
    "HttpVersionError",
    "InsufficientFundsError",
    "InternalError",
    "KycRequiredError",
    "LimitExceededError",
    "MethodNotAllowedError",
    "MisconductError",
    "NotFoundError",
    "OfferClosedError",
    "OutbidError",
    "PositionError",
    "PositionPendingError",
    "RateLimitedError",
    "RequestTimeoutError",
    "RouteRefusedError",
    "RuleError",
    "SignatureError",
    "StaleTimeError",
    "StoreError",
    "StoreFullError",
    "TChainError",
    "TooLargeError",
    "UnimplementedError",
    "UnknownAssetError",
    "UnknownChainError",
    "UnknownOfferError",
    "UnknownTakeError",
    "UnknownValidatorError",
    "UnsupportedMediaTypeError",
    "UriTooLongError",
    "VerificationError",
    "WireError",
    "wire_errors",
]


class TChainError(Exception):
    """Root of every error the core raises on purpose.

    Attributes:
        code: the protocol error code (docs/protocol.md §6), e.g. ``bad_seq``: the class's.
        status: the HTTP status a server answers with: the class's.
        detail: extra fields for the JSON error body (``expected`` for ``bad_seq``).

    ``code`` and ``status`` given to the constructor are for an error whose code is data,
    known only when it is raised: a bank's answer relayed by the CLI, a refusal marked as
    misconduct. Code that refuses something raises the class of the code instead.
    """

    code = "internal"
    status = 500
    after: tuple[Callable[[Any], None], ...] = ()

    def then(self, work: Callable[[Any], None]) -> Self:
        """This refusal, with what the refusing bank writes all the same (its evidence of
        misconduct, its own word on a plan): ``work`` runs in the write that keeps the
        refusal, after everything the refused request wrote is undone."""
        self.after = (*self.after, work)
        return self

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


class WireError(TChainError):
    """Root of the errors a server answers with a code of docs/protocol.md §6. A subclass
    that declares ``code`` is that code's one class; a subclass that does not refines the
    class it inherits the code from (EncodingError is a bad_request)."""


def wire_errors() -> dict[str, type[WireError]]:
    """The class of each wire code: the subclasses of :class:`WireError` that declare one."""
    found: dict[str, type[WireError]] = {}
    todo: list[type[WireError]] = [WireError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "code" in vars(cls):
            if found.get(cls.code, cls) is not cls:
                raise TypeError(f"{cls.__name__} and {found[cls.code].__name__} both declare "
                                f"the code {cls.code}")
            found[cls.code] = cls
    return found


# --- 4xx: what the customer, a peer or a client sent ----------------------------------------

class BadRequestError(WireError):
    """Malformed JSON or fields, bad amounts, unsupported types, a malformed HTTP request."""

    code = "bad_request"
    status = 400


class EncodingError(BadRequestError):
    """The bytes are not strict protocol JSON (floats, duplicate keys, bad amounts...)."""


class SignatureError(WireError):
    """A signature does not verify, or a key is not a usable Ed25519 public key."""

    code = "bad_signature"
    status = 400


class RuleError(WireError):
    """A well-formed, well-signed intent (or peer message) that the rules refuse: the base of
    the codes only the rules give. It declares no code of its own: raise the subclass of the
    code (:class:`BadRequestRuleError` for a refusal that is a bad request). Its status is
    the one most rule refusals have, for an error that gives its code as data."""

    status = 422


class BadRequestRuleError(RuleError, BadRequestError):
    """A rule refuses what was asked as a bad request (a chain paying itself, a take whose
    terms do not mirror the offer): caught as a RuleError, answered as ``bad_request``."""

    status = 400  # the code's (RuleError's comes first in the MRO)


class StaleTimeError(RuleError):
    """The intent's time is outside the window around the validator's clock."""

    code = "stale_time"
    status = 400


class AuthError(WireError):
    """No credentials, or credentials that do not verify (HTTP 401)."""

    code = "unauthorized"
    status = 401


class ForbiddenError(WireError):
    """Valid credentials without the right to what was asked (HTTP 403)."""

    code = "forbidden"
    status = 403


class NotFoundError(WireError):
    """The named chain, name or document does not exist here."""

    code = "not_found"
    status = 404


class UnknownChainError(NotFoundError):
    """The chain (or recipient) named is not registered here."""

    code = "unknown_chain"
    status = 404


class UnknownOfferError(NotFoundError):
    """The offer is not known here, not signed by its bank's pinned key, or (a cancel) not
    open on the chain."""

    code = "unknown_offer"
    status = 404


class UnknownTakeError(NotFoundError):
    """(In a peer's ``refused`` answer) the take a settlement names was not made here."""

    code = "unknown_take"
    status = 404


class MethodNotAllowedError(WireError):
    """The route exists, not with this method."""

    code = "method_not_allowed"
    status = 405


class RequestTimeoutError(WireError):
    """A request's head or body did not arrive in time."""

    code = "request_timeout"
    status = 408


class BadSeqError(RuleError):
    """``seq`` is not the chain's last + 1 (``expected``)."""

    code = "bad_seq"
    status = 409


class ConflictError(RuleError):
    """The name or key is registered already, or the state asked to change has moved on."""

    code = "conflict"
    status = 409


class OfferClosedError(RuleError):
    """The offer was taken, cancelled or expired."""

    code = "offer_closed"
    status = 409


class OutbidError(RuleError):
    """A take of an offer with a selection window lost: better bids took what it asked for
    (docs/adr/0009-best-taker.md)."""

    code = "outbid"
    status = 409


class TooLargeError(WireError):
    """The request body is over the limit."""

    code = "too_large"
    status = 413


class UriTooLongError(WireError):
    """The request target is over the limit."""

    code = "uri_too_long"
    status = 414


class UnsupportedMediaTypeError(WireError):
    """The request's media type is not one the route takes."""

    code = "unsupported_media_type"
    status = 415


class InsufficientFundsError(RuleError):
    """The chain has not that much available (``available``)."""

    code = "insufficient_funds"
    status = 422


class LimitExceededError(RuleError):
    """A daily limit (``limit``, ``spent``), the max supply or the largest amount (``limit``)."""

    code = "limit_exceeded"
    status = 422


class KycRequiredError(RuleError):
    """The payer's params demand a recipient with a KYC record."""

    code = "kyc_required"
    status = 422


class ExpiredError(RuleError):
    """A peer's message came after its deadline."""

    code = "expired"
    status = 422


class UnknownAssetError(RuleError):
    """The chain never held the asset; a deposit of an asset the bank does not issue."""

    code = "unknown_asset"
    status = 422


class UnknownValidatorError(RuleError):
    """The bank named is not this one nor a trusted peer of it."""

    code = "unknown_validator"
    status = 422


class ForeignAssetError(RuleError):
    """The asset is issued by a bank that is neither of the two it would cross between."""

    code = "foreign_asset"
    status = 422


class RouteRefusedError(RuleError):
    """A correspondent bank does not hand the payment on: it does not take the asset at par,
    its fee leaves the payee less than the payer signed for, or it cannot reach the next bank
    (docs/adr/0015-correspondent-routes.md)."""

    code = "route_refused"
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


class RateLimitedError(WireError):
    """Too many requests from one key; ``retry_after_ms`` says when the next may come."""

    code = "rate_limited"
    status = 429


class HeadersTooLargeError(WireError):
    """The request's head is over the limit."""

    code = "headers_too_large"
    status = 431


class MisconductError(RuleError):
    """A peer's message that only a dishonest bank would send: refused, and the message kept
    as evidence against it (a ``misconduct`` proof). Carries the code of what it broke, so it
    is made from that refusal (:meth:`of`), never raised with a code of its own."""

    @classmethod
    def of(cls, error: TChainError) -> MisconductError:
        """The same refusal, marked as misconduct."""
        return cls(error.message, code=error.code, status=error.status, **error.detail)


# --- 5xx: ours -------------------------------------------------------------------------------

class InternalError(WireError):
    """Our bug; logged with its traceback."""

    code = "internal"
    status = 500


class BooksError(InternalError):
    """A write would make or lose value (the books' invariant, tchain.books): our bug, never the
    customer's or the peer's. Nothing is written."""


class UnimplementedError(WireError):
    """The server does not do what the request needs (a transfer coding but chunked)."""

    code = "not_implemented"
    status = 501


class StoreError(WireError):
    """The store could not do what was asked; nothing was committed."""

    code = "unavailable"
    status = 503


class StoreFullError(StoreError):
    """The store cannot grow any further (the disk is full); nothing was committed."""

    code = "storage_full"
    status = 503


class HttpVersionError(WireError):
    """A request in an HTTP version other than 1.0 or 1.1."""

    code = "http_version_not_supported"
    status = 505


# --- not answered on the wire ----------------------------------------------------------------

class VerificationError(TChainError):
    """A chain, entry or proof fails offline verification (a wallet, an auditor, a proof
    checker): the shell turns it into a wire error where one reaches it."""

    code = "invalid"
    status = 422
