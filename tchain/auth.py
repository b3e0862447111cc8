"""Authenticated requests (PROTOCOL.md §7): ``Authorization: TChain key=, time=, sig=``.

The signature covers ``digest("request", {"method", "path", "query", "body", "time", "bank"})``
where ``body`` is the hex SHA-256 of the raw body and ``bank`` the name of the bank the request
is sent to: so a signed header cannot be moved to another method, path, query, body or bank,
and expires after ``REQUEST_WINDOW_MS``.
"""

from __future__ import annotations

import re

from tchain.digest import sha256_hex
from tchain.errors import AuthError, SignatureError
from tchain.keys import SigningKey, check_public_key, verify

__all__ = ["REQUEST_WINDOW_MS", "authorization_header", "request_doc", "request_signature",
           "verify_authorization"]

REQUEST_WINDOW_MS = 300_000
_HEADER = re.compile(r"TChain key=([0-9a-f]{64}), time=([0-9]{1,16}), sig=([0-9a-f]{128})")


def request_doc(method: str, path: str, query: str, body: bytes, time: int, *, bank: str
                ) -> dict[str, object]:
    """The document a request signature covers; ``bank`` is the name of the bank it is sent to."""
    return {"method": method.upper(), "path": path, "query": query, "body": sha256_hex(body),
            "time": time, "bank": bank}


def authorization_header(key: SigningKey, method: str, path: str, query: str, body: bytes,
                         time: int, *, bank: str) -> str:
    """The ``Authorization`` header value for a request to bank ``bank`` signed by ``key``."""
    sig = key.sign("request", request_doc(method, path, query, body, time, bank=bank))
    return f"TChain key={key.public_key}, time={time}, sig={sig}"


def verify_authorization(header: str | None, method: str, path: str, query: str, body: bytes,
                         now: int, *, bank: str) -> str:
    """Check an ``Authorization`` header sent to bank ``bank`` (this bank's name); return the
    public key that signed the request.

    Raises:
        AuthError: no header, a malformed one, an expired one or a bad signature, one made
            for another bank among them (HTTP 401).
    """
    if not header:
        what = "read" if method == "GET" else "request"  # a peer's message is no read
        raise AuthError(f"this {what} needs an Authorization: TChain key=..., time=..., "
                        "sig=... header")
    match = _HEADER.fullmatch(header.strip())
    if not match:
        raise AuthError("Authorization must be `TChain key=<64 hex>, time=<ms>, sig=<128 hex>`")
    key, time, sig = match.group(1), int(match.group(2)), match.group(3)
    if abs(time - now) > REQUEST_WINDOW_MS:
        raise AuthError(f"request time {time} is more than {REQUEST_WINDOW_MS} ms from the "
                        f"server's clock {now}")
    try:
        check_public_key(key)
        verify(key, "request", request_doc(method, path, query, body, time, bank=bank), sig)
    except SignatureError as e:
        raise AuthError(f"request signature does not verify for a request to {bank}: "
                        f"{e.message}") from e
    return key


def request_signature(header: str) -> str:
    """The ``sig`` of a well-formed Authorization header (the request's own id)."""
    match = _HEADER.fullmatch(header.strip())
    if not match:
        raise AuthError("Authorization must be `TChain key=<64 hex>, time=<ms>, sig=<128 hex>`")
    return match.group(3)
