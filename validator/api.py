"""The single-bank HTTP API (PROTOCOL.md §7): registering chains, submitting intents, reads.

Signed entries are served as the exact bytes the store holds, spliced into the answer, never
decoded and re-encoded.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from tchain.auth import verify_authorization
from tchain.encoding import canonical, parse
from tchain.errors import EncodingError
from tchain.keys import is_hex
from tchain.ledger import now_ms
from validator.bank import Bank

__all__ = ["blueprint"]

blueprint = Blueprint("api", __name__, url_prefix="/v1")
MAX_PAGE = 1000


def _bank() -> Bank:
    bank: Bank = current_app.extensions["tchain.bank"]
    return bank


def _json(body: Any, status: int = 200) -> Response:
    return Response(canonical(body), status=status, mimetype="application/json")


def _entries(raw: list[bytes], status: int = 200) -> Response:
    return Response(b'{"entries":[' + b",".join(raw) + b"]}", status=status,
                    mimetype="application/json")


def _body() -> Any:
    return parse(request.get_data(cache=True))


def _raw_path() -> str:
    """The URL path as the client sent it (before percent-decoding), as requests are signed."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return str(raw).split("?", 1)[0] if raw else request.path


def _reader_key() -> str:
    return verify_authorization(request.headers.get("Authorization"), request.method,
                                _raw_path(), request.query_string.decode("latin-1"),
                                request.get_data(cache=True), now_ms())


def _chain_id(value: str) -> str:
    if not is_hex(value, 64):
        raise EncodingError(f"a chain id is 64 lowercase hex characters, got {value!r}")
    return value


def _int_arg(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 16 or int(raw) > maximum:
        raise EncodingError(f"query {name} must be an integer 0..{maximum}, got {raw!r}")
    return int(raw)


@blueprint.post("/chains")
def register() -> Response:
    genesis = _bank().ledger.register(_body())
    return Response(genesis.to_bytes(), status=201, mimetype="application/json")


@blueprint.post("/intents")
def submit() -> Response:
    outcome = _bank().ledger.submit(_body())
    return _entries([e.to_bytes() for e in outcome.entries], status=201)


@blueprint.get("/chains/<chain_id>")
def chain(chain_id: str) -> Response:
    key = _reader_key()
    bank = _bank()
    with bank.ledger.store.read() as r:
        state = bank.readable_state(r, _chain_id(chain_id), key)
    return _json({"chain": state.chain, "address": state.address, "height": state.height,
                  "head": state.head, "seq": state.seq, "owner": state.owner,
                  "balances": {a: b.to_dict() for a, b in sorted(state.balances.items())}})


@blueprint.get("/chains/<chain_id>/entries")
def entries(chain_id: str) -> Response:
    key = _reader_key()
    start = _int_arg("from", 0, 2**53 - 1)
    limit = _int_arg("limit", MAX_PAGE, MAX_PAGE)
    bank = _bank()
    with bank.ledger.store.read() as r:
        bank.readable_state(r, _chain_id(chain_id), key)
        raw = r.entries(chain_id, start, limit)
    return _entries(raw)


@blueprint.get("/chains")
def chains() -> Response:
    key = _reader_key()
    after = request.args.get("after")
    limit = _int_arg("limit", MAX_PAGE, MAX_PAGE)
    bank = _bank()
    with bank.ledger.store.read() as r:
        bank.require_regulator(r, key)
        ids = r.chain_ids(None if after is None else _chain_id(after), limit)
    page: dict[str, Any] = {"chains": ids}
    if len(ids) == limit:
        page["next"] = ids[-1]
    return _json(page)
