"""The HTTP API (PROTOCOL.md §7): registering chains, submitting intents, reads; and the
validator-to-validator endpoint, proofs and flow states (docs/protocol.md §8-9).

Signed entries are served as the exact bytes the store holds, spliced into the answer, never
decoded and re-encoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, current_app, request

from tchain.auth import request_signature
from tchain.clock import now_ms
from tchain.encoding import canonical, leading, splice
from tchain.errors import (
    EncodingError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    TChainError,
)
from tchain.flow_states import Flow
from tchain.keys import is_hex
from tchain.messages import Message
from tchain.model import SignedIntent
from tchain.rules import TIME_WINDOW_MS
from tchain.status import sign_status
from validator.bank import Bank
from validator.ledger import Submitted
from validator.metrics import Metrics
from validator.ratelimit import STRANGERS
from validator.store import Reader
from validator.web import charge as _charge
from validator.web import current_bank as _bank
from validator.web import int_arg as _int_arg
from validator.web import json_response as _json
from validator.web import limiter as _limiter
from validator.web import request_body as _body
from validator.web import signer_key as _signer_key

__all__ = ["blueprint"]

blueprint = Blueprint("api", __name__, url_prefix="/v1")
MAX_PAGE = 1000
MAX_BATCH = 1000


def _entry_list(raw: list[bytes]) -> bytes:
    return splice({"entries": raw})


def _entries(raw: list[bytes], status: int = 200) -> Response:
    return Response(_entry_list(raw), status=status, mimetype="application/json")


def _charge_intent_owner(doc: Any) -> None:
    """Charge a well-signed intent that could still be accepted to its chain's owner; anything
    else is left for the ledger to refuse, uncharged: nobody spends another's budget by naming
    their chain, nor by replaying an intent of theirs they saw (an offer's, from
    ``GET /v1/offers``; found by the outside attacker, who locked a maker out with 429s that
    way). With no limit set, nothing is parsed or verified here: the ledger does both."""
    if not _limiter().enabled:
        return
    try:
        intent = SignedIntent.from_dict(doc)
        if intent.chain is None:
            return
        with _bank().ledger.store.read() as r:
            state = r.state(intent.chain)
        if state is None or intent.seq <= state.seq or \
                abs(intent.time - now_ms()) > TIME_WINDOW_MS:
            return  # not its owner asking: a replay, or nothing the ledger will take
        intent.verify(state.owner)
    except TChainError:
        return
    _charge(state.owner)


def _chain_id(value: str, what: str = "a chain id") -> str:
    if not is_hex(value, 64):
        raise EncodingError(f"{what} is 64 lowercase hex characters, got {value!r}")
    return value


def _metrics() -> Metrics:
    metrics: Metrics = current_app.extensions["tchain.metrics"]
    return metrics


@contextmanager
def _counted() -> Iterator[None]:
    """Count the intent of this request: refused with the code of the error that escapes
    (accepted is counted by the caller, once it is)."""
    try:
        yield
    except TChainError as e:
        _metrics().intents(refused=[e.code])
        raise


@blueprint.post("/chains")
def register() -> Response:
    with _counted():
        genesis = _bank().ledger.register(_body(), admit=_limiter().charge_registration)
    _metrics().intents(accepted=1)
    return Response(genesis.to_bytes(), status=201, mimetype="application/json")


@blueprint.post("/chains/<chain_id>/recovery")
def recovery(chain_id: str) -> Response:
    """A new key asks for a chain whose key was lost, with its KYC record: 202 with the
    ``recover`` entry and when it takes effect, unless the current key cancels it first."""
    chain_id = _chain_id(chain_id)
    entry, after = _bank().ledger.recover(
        chain_id, _body(), admit=lambda: _limiter().charge_recovery(chain_id))
    assert after.recovery is not None
    summary = canonical({"entry": entry.id, "owner": after.recovery.owner,
                         "effective": after.recovery.at})
    return Response(splice({"entries": [entry.to_bytes()], "recovery": summary}),
                    status=202, mimetype="application/json")


@blueprint.post("/intents")
def submit() -> Response:
    """201 with the entries made; for a flow with a peer bank, the peer is tried at once and
    the answer is 201 if it did its side in that time, else 202 (the sender goes on trying)."""
    bank = _bank()
    with _counted():
        doc = _body()
        _charge_intent_owner(doc)
        result = bank.singles.submit(doc)  # decided with the others waiting; _body() parsed it
        if result.error is not None:
            raise result.error
    _metrics().intents(accepted=1)
    bank.sender.try_at_once(result.messages)
    [(status, body)] = _accepted(bank, [result])
    return Response(body, status=status, mimetype="application/json")


@blueprint.post("/intents/batch")
def submit_batch() -> Response:
    """Many signed intents in one request: ``{"intents": [...]}``, decided in order in one
    group commit. 200 with ``{"results": [...]}``, one per intent in the same order: each the
    body a single submission would have answered, with its ``status``."""
    bank = _bank()
    doc = _body()
    if not isinstance(doc, dict) or doc.keys() != {"intents"} or \
            not isinstance(doc["intents"], list):
        raise EncodingError('a batch is a JSON object {"intents": [signed intents]}')
    intents = doc["intents"]
    if not 1 <= len(intents) <= MAX_BATCH:
        raise EncodingError(f"a batch holds 1..{MAX_BATCH} intents, got {len(intents)}")
    refused: dict[int, TChainError] = {}
    for i, intent in enumerate(intents):
        try:
            _charge_intent_owner(intent)
        except RateLimitedError as e:
            refused[i] = e
    with bank.deciding_batch:
        results = bank.ledger.submit_many(
            [x for i, x in enumerate(intents) if i not in refused],
            read=SignedIntent.trusted)  # _body() parsed them
    _metrics().intents(accepted=sum(r.error is None for r in results),
                       refused=[e.code for e in refused.values()] +
                       [r.error.code for r in results if r.error is not None])
    bank.sender.try_at_once([m for r in results for m in r.messages])
    accepted = iter(_accepted(bank, [r for r in results if r.error is None]))
    answers, decided = [], iter(results)
    for i in range(len(intents)):
        result = refused.get(i) or next(decided)
        if isinstance(result, TChainError) or result.error is not None:
            error = result if isinstance(result, TChainError) else result.error
            assert error is not None
            answers.append(leading("status", error.status, canonical(error.to_dict())))
        else:
            status, body = next(accepted)
            answers.append(leading("status", status, body))
    return Response(splice({"results": answers}), status=200, mimetype="application/json")


def _accepted(bank: Bank, results: list[Submitted]) -> list[tuple[int, bytes]]:
    """The status and body that answer each accepted intent (one read for all of them, and
    none when no intent reached beyond the bank)."""
    if not any(result.messages for result in results):
        return [_accepted_in(None, result) for result in results]
    with bank.ledger.store.read() as r:
        return [_accepted_in(r, result) for result in results]


def _accepted_in(r: Reader | None, result: Submitted) -> tuple[int, bytes]:
    assert result.outcome is not None
    entries = [e.to_bytes() for e in result.outcome.entries]
    if not result.messages:
        return 201, _entry_list(entries)
    assert r is not None
    first = result.outcome.entries[0]
    flow = r.record("flows", first.id)
    if flow is None:  # an offer or cancel: done here; the peers hear through the outbox
        return 201, _entry_list(entries)
    entries += [raw for h in (flow.get("settled_height"), flow.get("released_height"))
                if h is not None and (raw := r.entry(flow["chain"], h)) is not None]
    status = 202 if Flow.from_dict(flow).waiting_on_peer else 201
    summary = canonical({"id": first.id, "state": flow["state"], "peer": flow["peer"],
                         "deadline": flow["deadline"], "reason": flow["reason"]})
    return status, splice({"entries": entries, "flow": summary})


@blueprint.get("/flows/<flow_id>")
def flow(flow_id: str) -> Response:
    """The state of a cross-bank flow, for the owner of the chain it holds on (or a
    regulator)."""
    key = _signer_key()
    bank = _bank()
    record = bank.interbank.flow(_chain_id(flow_id, "a flow id"))
    if record is None:
        raise NotFoundError(f"no cross-bank flow {flow_id} at {bank.name}")
    with bank.ledger.store.read() as r:
        try:
            bank.readable_state(r, record["chain"], key)
        except ForbiddenError as e:  # without naming the chain (the outside attacker saw it)
            raise ForbiddenError(f"key {key} may not read flow {flow_id}: only the owner of "
                                 "the chain it holds on and the bank's regulators may") from e
    return _json({"id": flow_id, "type": record["type"], "state": record["state"],
                  "peer": record["peer"], "deadline": record["deadline"],
                  "reason": record["reason"]})


@blueprint.get("/locks/<lock_id>")
def lock(lock_id: str) -> Response:
    """A hash-time lock kept for one of our customers (tchain.htlc), for its payee (or a
    regulator): the signed lock entry, the bank that made it, and what was decided on it."""
    lock_id = _chain_id(lock_id, "a lock id")  # before the signature: a bad id is a bad id
    key = _signer_key()
    bank = _bank()
    with bank.ledger.store.read() as r:
        record = r.record("locks", lock_id)
        if record is None or record["lock"] is None:
            raise NotFoundError(f"no lock {lock_id} is kept at {bank.name}")
        try:
            bank.readable_state(r, record["lock"]["entry"]["intent"]["intent"]["body"]["to"],
                                key)
        except ForbiddenError as e:
            raise ForbiddenError(f"key {key} may not read lock {lock_id}: only its payee and "
                                 "the bank's regulators may") from e
    return _json({"id": lock_id, "validator": record["validator"], "state": record["state"],
                  "lock": record["lock"]})


@blueprint.post("/peer/messages")
def peer_message() -> Response:
    """A pinned peer bank's signed message; the answer is our signed message, the same bytes
    every time the same message comes."""
    key = _peer_key()
    answer = _bank().interbank.receive(_body(), key)
    return Response(answer, status=200, mimetype="application/json")


@blueprint.post("/peer/messages/batch")
def peer_messages() -> Response:
    """Many of a pinned peer's messages, ``{"messages": [...]}``, applied in one group commit.
    200 with ``{"answers": [...]}`` in the same order: each our signed answer (the bytes a
    single delivery gets), or the error object that refused that message."""
    key = _peer_key()
    doc = _body()
    if not isinstance(doc, dict) or doc.keys() != {"messages"} or \
            not isinstance(doc["messages"], list) or not 1 <= len(doc["messages"]) <= MAX_BATCH:
        raise EncodingError(f'a batch is a JSON object {{"messages": [1..{MAX_BATCH} signed '
                            "peer messages]}")
    answers = _bank().interbank.receive_many(doc["messages"], key,
                                             read=Message.trusted)  # _body() parsed them
    parts = [canonical(a.to_dict()) if isinstance(a, TChainError) else a for a in answers]
    return Response(splice({"answers": parts}), status=200, mimetype="application/json")


def _peer_key() -> str:
    """The key that signed a peer request; charged to its budget unless it is a pinned peer's
    (a peer that is not pinned will be refused, and may not flood us meanwhile)."""
    key = _signer_key(charge=False)
    if _limiter().enabled:
        with _bank().ledger.store.read() as r:
            pinned = any(p["key"] == key for p in r.peers())
        if not pinned:
            _charge(STRANGERS)
    return key


@blueprint.get("/proofs")
def proofs() -> Response:
    """Proofs of peers' misbehaviour this bank holds: for its regulators and its peers."""
    key = _signer_key()
    bank = _bank()
    with bank.ledger.store.read() as r:
        bank.require_regulator_or_peer(r, key)
    return _json({"proofs": bank.interbank.proofs()})


@blueprint.get("/chains/<chain_id>")
def chain(chain_id: str) -> Response:
    key = _signer_key()
    bank = _bank()
    with bank.ledger.store.read() as r:
        state = bank.readable_state(r, _chain_id(chain_id), key)
    status = {"chain": state.chain, "address": state.address, "height": state.height,
              "head": state.head, "seq": state.seq, "owner": state.owner,
              "balances": {a: b.to_dict() for a, b in sorted(state.balances.items())}}
    return _json(sign_status(bank.key, status, now=now_ms(),
                             request=request_signature(request.headers["Authorization"])))


@blueprint.get("/chains/<chain_id>/entries")
def entries(chain_id: str) -> Response:
    key = _signer_key()
    start = _int_arg("from", 0, 2**53 - 1)
    limit = _int_arg("limit", MAX_PAGE, MAX_PAGE, minimum=1)
    bank = _bank()
    with bank.ledger.store.read() as r:
        bank.readable_state(r, _chain_id(chain_id), key)
        raw = r.entries(chain_id, start, limit)
    return _entries(raw)


@blueprint.get("/chains")
def chains() -> Response:
    key = _signer_key()
    after = request.args.get("after")
    limit = _int_arg("limit", MAX_PAGE, MAX_PAGE, minimum=1)
    bank = _bank()
    with bank.ledger.store.read() as r:
        bank.require_regulator(r, key)
        ids = r.chain_ids(None if after is None else _chain_id(after), limit)
    page: dict[str, Any] = {"chains": ids}
    if len(ids) == limit:
        page["next"] = ids[-1]
    return _json(page)
