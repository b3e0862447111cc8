"""What every blueprint of the bank's HTTP API shares (validator/api.py, and the features'
own, such as validator/plan_api.py): the bank serving the request, the key that signed it
(charged to its budget), its JSON body, and a canonical JSON answer. validator/api.py, where
they were born, imports them under its old private names."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from tchain.auth import verify_authorization
from tchain.clock import now_ms
from tchain.encoding import canonical, parse
from tchain.errors import EncodingError
from validator.bank import Bank
from validator.ratelimit import STRANGERS, RateLimiter

__all__ = ["charge", "charge_signer", "current_bank", "int_arg", "json_response", "limiter",
           "raw_path", "request_body", "signer_key"]


def current_bank() -> Bank:
    bank: Bank = current_app.extensions["tchain.bank"]
    return bank


def json_response(body: Any, status: int = 200) -> Response:
    return Response(canonical(body), status=status, mimetype="application/json")


def request_body() -> Any:
    return parse(request.get_data(cache=True))


def raw_path() -> str:
    """The URL path as the client sent it (before percent-decoding), as requests are signed."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return str(raw).split("?", 1)[0] if raw else request.path


def limiter() -> RateLimiter:
    found: RateLimiter = current_app.extensions["tchain.limiter"]
    return found


def charge(key: str) -> None:
    limiter().charge(key)


def charge_signer(key: str) -> None:
    """Charge a key that signed a request: to its own budget if it is someone here (a chain's
    owner, a regulator, a peer), else to the one budget all strangers share. Anyone can make
    keys: found by the outside attacker, 75,000 fresh keys each reading a chain not theirs
    filled the budgets' store and then new customers' requests failed."""
    if not limiter().enabled:
        return
    with current_bank().ledger.store.read() as r:
        known = r.chain_by_owner(key) is not None or r.is_regulator(key) or \
            any(p["key"] == key for p in r.peers())
    charge(key if known else STRANGERS)


def signer_key(*, charge: bool = True) -> str:
    """The key that signed this request (its Authorization header), charged to its budget."""
    key = verify_authorization(request.headers.get("Authorization"), request.method,
                               raw_path(), request.query_string.decode("latin-1"),
                               request.get_data(cache=True), now_ms(), bank=current_bank().name)
    if charge:
        charge_signer(key)
    return key


def int_arg(name: str, default: int, maximum: int, minimum: int = 0) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # ASCII digits only: int() also reads other scripts' digits (U+0661, found by the outside
    # attacker), which no client signs as such
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 16 or \
            not minimum <= int(raw) <= maximum:
        raise EncodingError(f"query {name} must be an integer {minimum}..{maximum}, got "
                            f"{raw!r}")
    return int(raw)
