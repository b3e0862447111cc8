"""The OpenAPI 3.0 description of every endpoint, served at ``/openapi.json``.

It describes what the validator really accepts: request schemas are as strict as the parsers
behind them (unknown fields refused, integers within 0..2^53-1, ids as lowercase hex), so a
request outside the schema is a request the server refuses with a JSON 4xx; the suite checks
that with schemathesis. The protocol's own rules (signatures, seq, funds) are beyond a schema:
docs/protocol.md is the full spec.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from tchain.encoding import canonical
from validator.plans import MAX_LISTED

__all__ = ["blueprint", "openapi_document"]

blueprint = Blueprint("openapi", __name__)

MAX_INT = 2**53 - 1
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
HEX128 = {"type": "string", "pattern": "^[0-9a-f]{128}$"}
OBJECT = {"type": "object"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"text/plain": {"schema": {"type": "string"}}}}


def _responses(ok: dict[str, dict[str, Any]], errors: tuple[str, ...]) -> dict[str, Any]:
    out = dict(ok)
    for status in errors:
        out[status] = {"$ref": "#/components/responses/Error"}
    return out


def _signed_read(summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": [{"tchain": []}],
                    "parameters": params or [],
                    "responses": _responses({"200": ok},
                                            ("400", "401", "403", "404", "429", "503"))}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": HEX64}


def _query_int(name: str, maximum: int, description: str, minimum: int = 0) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": minimum, "maximum": maximum}}


def _batch_body(field: str, item: str) -> dict[str, Any]:
    """A batch request: ``{field: [1..1000 items]}``. Any item is accepted by the schema: a
    malformed one is refused in its own result, not the whole batch."""
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "required": [field],
        "properties": {field: {"type": "array", "minItems": 1, "maxItems": 1000,
                               "items": {"description": item}}}}}}}


def _plan_paths() -> dict[str, Any]:
    """The execution plans' endpoints (docs/protocol.md §14)."""
    plan_params = [{"name": "bank", "in": "path", "required": True, "schema": {"type": "string"},
                    "description": "The bank that named the plan."},
                   {"name": "uuid", "in": "path", "required": True,
                    "schema": {"type": "string"}, "description": "The plan's uuid4."}]
    plans = {"type": "object", "required": ["plans"],
             "properties": {"plans": {"type": "array", "items": OBJECT}, "next": HEX64}}
    errors = ("400", "401", "403", "404", "409", "413", "422", "429", "503")
    return {
        "/v1/plans": {
            **_signed_read("A page of the plans known here that the signer may read.",
                           _json(plans, "plans"), params=[
                               {"name": "after", "in": "query", "required": False,
                                "schema": HEX64},
                               _query_int("limit", MAX_LISTED, "Plan records read.",
                                          minimum=1)]),
            "post": {"summary": "A customer proposes a plan (its plan file as JSON).",
                     "security": [{"tchain": []}],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "object", "additionalProperties": False,
                                    "required": ["participants", "instructions"],
                                    "properties": {
                                        "participants": {"type": "array", "items": OBJECT},
                                        "instructions": {"type": "array", "items": OBJECT},
                                        "deadline": {"type": "integer", "minimum": 0,
                                                     "maximum": MAX_INT},
                                        "deadline_in": {"type": "integer", "minimum": 0,
                                                        "maximum": MAX_INT}}}}}},
                     "responses": _responses({"201": _json(OBJECT, "the plan's id and state")},
                                             errors)}},
        "/v1/plans/{bank}/106/{uuid}": _signed_read(
            "A plan's state, each instruction with its receipts, and its log.",
            _json(OBJECT, "the plan"), params=plan_params),
        "/v1/plans/{bank}/106/{uuid}/consent": {"post": {
            "summary": "A customer's signed consents (plan intents) to their holds.",
            "security": [{"tchain": []}], "parameters": plan_params,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "required": ["consents"],
                "properties": {"consents": {"type": "array", "minItems": 1, "maxItems": 100,
                                            "items": OBJECT}}}}}},
            "responses": _responses({"200": _json(OBJECT, "the plan's id and state")},
                                    errors)}},
    }


def openapi_document() -> dict[str, Any]:
    intent: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "required": ["type", "seq", "time", "body"],
        "properties": {
            "type": {"type": "string", "enum": ["register", "payment", "issue", "redeem",
                                                "rotate_key", "offer", "cancel", "take"]},
            "chain": HEX64,
            "seq": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
            "time": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
            "body": OBJECT,
        },
    }
    # A register intent (docs/protocol.md §3): it names the bank it opens the chain at, and
    # every other bank refuses it.
    register_intent = {
        **intent, "properties": {
            **intent["properties"],
            "type": {"type": "string", "enum": ["register"]},
            "chain": {"nullable": True, "enum": [None], "description": "absent or null"},
            "body": {"type": "object", "additionalProperties": False,
                     "required": ["name", "bank", "owner", "kyc", "params"],
                     "properties": {
                         "name": {"type": "string", "description": "The customer's name "
                                  "(for the bank's own chain, the bank's name)."},
                         "bank": {"type": "string", "description": "The name of the bank "
                                  "the chain is opened at: this bank's; any other is refused."},
                         "owner": HEX64,
                         "kyc": {**HEX64, "nullable": True, "description": "The hex SHA-256 "
                                 "of the canonical KYC record sent beside it, or null."},
                         "params": {"type": "object", "additionalProperties": False,
                                    "properties": {"daily_limit": OBJECT,
                                                   "kyc_recipients": {"type": "boolean"},
                                                   "max_supply": OBJECT}}}}}}
    schemas = {
        "Error": {"type": "object", "required": ["error", "message"],
                  "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
        "SignedIntent": {"type": "object", "additionalProperties": False,
                         "required": ["intent", "sig"],
                         "properties": {"intent": intent, "sig": HEX128}},
        "RegisterRequest": {"type": "object", "additionalProperties": False,
                            "required": ["intent", "sig"],
                            "properties": {"intent": register_intent, "sig": HEX128,
                                           "kyc_record": {"type": "object", "nullable": True}}},
        "SignedEntry": {"type": "object", "additionalProperties": False,
                        "required": ["entry", "sig"],
                        "properties": {"entry": OBJECT, "sig": HEX128}},
        "Entries": {"type": "object", "required": ["entries"],
                    "properties": {"entries": {"type": "array", "items": _ref("SignedEntry")},
                                   "flow": _ref("Flow")}},
        "Flow": {"type": "object", "required": ["id", "state", "peer", "deadline", "reason"],
                 "properties": {"id": HEX64, "type": {"type": "string"},
                                "state": {"type": "string"}, "peer": {"type": "string"},
                                "deadline": {"type": "integer"},
                                "reason": {"type": "string", "nullable": True}}},
        "PeerMessage": {"type": "object", "additionalProperties": False,
                        "required": ["message", "sig"],
                        "properties": {"message": OBJECT, "sig": HEX128}},
        "ChainStatus": {"type": "object",
                        "required": ["chain", "address", "height", "head", "seq", "owner",
                                     "balances", "as_of", "request", "sig"],
                        "properties": {"chain": HEX64, "address": {"type": "string"},
                                       "height": {"type": "integer", "minimum": 0},
                                       "head": HEX64, "seq": {"type": "integer", "minimum": 0},
                                       "owner": HEX64, "balances": OBJECT,
                                       "as_of": {"type": "integer"}, "request": HEX128,
                                       "sig": HEX128}},
        "Record": {"type": "object", "required": ["record", "sig"],
                   "properties": {"record": OBJECT, "sig": HEX128}},
        "Sep2Record": {"type": "object", "additionalProperties": False,
                       "required": ["stellar_address", "account_id", "chain", "validator",
                                    "sig"],
                       "properties": {"stellar_address": {"type": "string"},
                                      "account_id": HEX64, "chain": HEX64,
                                      "validator": {"type": "string"}, "sig": HEX128}},
        "WellKnown": {"type": "object", "required": ["document", "sig"],
                      "properties": {"document": OBJECT, "sig": HEX128}},
        "Health": {"type": "object",
                   "required": ["status", "problems", "store", "sender", "readers", "outbox"],
                   "properties": {
                       "status": {"type": "string", "enum": ["ok", "degraded"]},
                       "problems": {"type": "array", "items": {"type": "string"}},
                       "store": {"type": "object", "required": ["open", "ok"],
                                 "properties": {"open": {"type": "boolean"},
                                                "ok": {"type": "boolean"}}},
                       "sender": {"type": "object", "nullable": True,
                                  "required": ["alive", "pid", "restarts", "last_beat_ms_ago"],
                                  "properties": {
                                      "alive": {"type": "boolean"},
                                      "pid": {"type": "integer", "nullable": True},
                                      "restarts": {"type": "integer", "minimum": 0},
                                      "last_beat_ms_ago": {"type": "integer"}}},
                       "readers": {"type": "object", "required": ["in_use", "max"],
                                   "properties": {
                                       "in_use": {"type": "integer", "nullable": True},
                                       "max": {"type": "integer"}}},
                       "outbox": {"type": "object", "required": ["backlog"],
                                  "properties": {
                                      "backlog": {"type": "integer", "nullable": True},
                                      "stuck": {"type": "object", "description":
                                                "per peer: messages failed 10 times and more "
                                                "in a row (messages, oldest_ms, attempts, "
                                                "last_error)"}}}}},
    }
    security_read = ("Requests signed by the caller: `Authorization: TChain key=, time=, sig=`, "
                     "the signature over the method, path, query, body hash, time and this "
                     "bank's name (docs/protocol.md §7): a header made for another bank is "
                     "refused")
    chain_id = _path_param("chain_id", "The chain's id (its genesis entry's id).")
    lookup = [{"name": "type", "in": "query", "required": True,
               "schema": {"type": "string", "enum": ["name", "id"]}},
              {"name": "q", "in": "query", "required": True,
               "schema": {"type": "string", "minLength": 1}}]
    paths: dict[str, Any] = {
        "/openapi.json": {"get": {"summary": "This document.",
                                  "responses": {"200": _json(OBJECT, "OpenAPI 3.0")}}},
        "/health": {"get": {
            "summary": "Whether the bank can do its work: its store, its outbox sender, its "
                       "store's reader slots and its outbox backlog; 503 when degraded.",
            "responses": {"200": _json(_ref("Health"), "ok"),
                          "503": _json(_ref("Health"), "degraded: see problems")}}},
        "/metrics": {"get": {
            "summary": "What the bank is doing, in Prometheus' text format: requests by "
                       "endpoint and status, intents accepted and refused by code, commit "
                       "latency, the outbox waiting for each peer, flows in flight, holds "
                       "open, proofs kept, reader slots.",
            "responses": {"200": _text("Prometheus text exposition")}}},
        "/.well-known/tchain.json": {"get": {
            "summary": "The bank's signed name, key, chain, URL, assets and peers.",
            "responses": _responses({"200": _json(_ref("WellKnown"), "signed document")},
                                    ("404", "503"))}},
        "/federation": {"get": {
            "summary": "Resolve a customer's address (type=name) or key or chain (type=id).",
            "parameters": lookup,
            "responses": _responses({"200": _json(_ref("Record"), "signed record")},
                                    ("400", "404", "503"))}},
        "/.well-known/stellar.toml": {"get": {
            "summary": "SEP-1: where the bank's SEP-2 federation server is, and its key as a "
                       "Stellar strkey (docs/protocol.md §7).",
            "responses": _responses({"200": _text("TOML")}, ("404", "503"))}},
        "/federation/sep2": {"get": {
            "summary": "The federation lookup in SEP-2's flat shape, for Stellar wallets: "
                       "stellar_address and account_id (the owner's key in hex), chain, "
                       "validator, and the bank's signature over the TChain record.",
            "parameters": lookup,
            "responses": _responses({"200": _json(_ref("Sep2Record"), "flat record")},
                                    ("400", "404", "503"))}},
        "/v1/offers": {"get": {
            "summary": "Open offers known here selling or buying an asset, each with its "
                       "signed, funded offer entry and `remaining` (what is left of it to "
                       "take, after the fills this bank heard of); at most 100, with `next` "
                       "(the `after` of the next page) when the page is full.",
            "parameters": [{"name": "asset", "in": "query", "required": False,
                            "schema": {"type": "string", "minLength": 1}},
                           {"name": "after", "in": "query", "required": False,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}],
            "responses": _responses({"200": _json(
                {"type": "object", "required": ["offers"],
                 "properties": {"offers": {"type": "array", "items": OBJECT},
                                "next": {"type": "string"}}}, "offers")},
                ("400", "503"))}},
        "/v1/chains": {
            "post": {"summary": "Register a chain: a self-signed register intent and the "
                                "private KYC record.",
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": _ref("RegisterRequest")}}},
                     "responses": _responses({"201": _json(_ref("SignedEntry"), "genesis")},
                                             ("400", "409", "413", "422", "503"))},
            **_signed_read("List chain ids (regulators).", _json(
                {"type": "object", "required": ["chains"],
                 "properties": {"chains": {"type": "array", "items": HEX64},
                                "next": HEX64}}, "a page of chain ids"),
                params=[{"name": "after", "in": "query", "required": False, "schema": HEX64},
                        _query_int("limit", 1000, "Page size.", minimum=1)])},
        "/v1/intents": {"post": {
            "summary": "Submit a signed intent; 201 with the entries made, 202 while a peer "
                       "bank has yet to do its side.",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("SignedIntent")}}},
            "responses": _responses({"201": _json(_ref("Entries"), "co-signed entries"),
                                     "202": _json(_ref("Entries"), "waiting on a peer")},
                                    ("400", "404", "409", "413", "422", "429", "503"))}},
        "/v1/intents/batch": {"post": {
            "summary": "Submit up to 1000 signed intents, decided in order in one group "
                       "commit; one result per intent, each the body a single submission "
                       "answers, with its status.",
            "requestBody": _batch_body("intents", "a SignedIntent"),
            "responses": _responses({"200": _json(
                {"type": "object", "required": ["results"],
                 "properties": {"results": {"type": "array", "items": {
                     "type": "object", "required": ["status"],
                     "properties": {"status": {"type": "integer"}}}}}},
                "one result per intent")}, ("400", "413", "503"))}},
        "/v1/chains/{chain_id}/recovery": {"post": {
            "summary": "A new key asks for a chain whose key was lost: a recover intent signed "
                       "by the new key, seq 0, and the chain's KYC record. Effective after the "
                       "chain's recovery delay unless its current key cancels it.",
            "parameters": [chain_id],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["intent", "sig", "kyc_record"],
                "properties": {"intent": OBJECT, "sig": {"type": "string"},
                               "kyc_record": OBJECT}}}}},
            "responses": _responses({"202": _json(
                {"type": "object", "required": ["entries", "recovery"],
                 "properties": {"entries": {"type": "array", "items": _ref("SignedEntry")},
                                "recovery": OBJECT}}, "the recover entry")},
                ("400", "403", "404", "409", "413", "429", "503"))}},
        "/v1/chains/{chain_id}": _signed_read(
            "A chain's status, signed by the bank and bound to this request.",
            _json(_ref("ChainStatus"), "signed status"), params=[chain_id]),
        "/v1/chains/{chain_id}/entries": _signed_read(
            "A page of a chain's signed entries.", _json(_ref("Entries"), "entries"),
            params=[chain_id, _query_int("from", MAX_INT, "First height."),
                    _query_int("limit", 1000, "Page size.", minimum=1)]),
        "/v1/flows/{flow_id}": _signed_read(
            "Where a cross-bank payment or take stands.", _json(_ref("Flow"), "flow"),
            params=[_path_param("flow_id", "The id of the entry that opened the flow.")]),
        "/v1/locks/{lock_id}": _signed_read(
            "A hash-time lock kept for the caller's chain: the signed lock, its bank and its "
            "state (open, claimed, expired).", _json(OBJECT, "lock"),
            params=[_path_param("lock_id", "The id of the lock entry.")]),
        "/v1/proofs": _signed_read(
            "Proofs of peers' misbehaviour (regulators and pinned peers).", _json(
                {"type": "object", "required": ["proofs"],
                 "properties": {"proofs": {"type": "array", "items": OBJECT}}}, "proofs")),
        **_plan_paths(),
        "/v1/peer/messages": {"post": {
            "summary": "A pinned peer bank's signed message; the answer is this bank's signed "
                       "message, the same bytes every time.",
            "security": [{"tchain": []}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("PeerMessage")}}},
            "responses": _responses({"200": _json(_ref("PeerMessage"), "signed answer")},
                                    ("400", "401", "403", "413", "422", "429", "503"))}},
        "/v1/peer/messages/batch": {"post": {
            "summary": "Up to 1000 of a pinned peer's signed messages in one group commit; "
                       "one answer per message: the signed answer, or the error refusing it.",
            "security": [{"tchain": []}],
            "requestBody": _batch_body("messages", "a PeerMessage"),
            "responses": _responses({"200": _json(
                {"type": "object", "required": ["answers"],
                 "properties": {"answers": {"type": "array", "items": OBJECT}}},
                "one answer per message")},
                ("400", "401", "403", "413", "429", "503"))}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "TChain validator", "version": "1",
                 "description": "A bank's validator: per-customer chains co-signed by the "
                                "bank (docs/protocol.md)."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": _json(_ref("Error"), "a refusal; nothing changed")},
            "securitySchemes": {"tchain": {"type": "apiKey", "in": "header",
                                           "name": "Authorization",
                                           "description": security_read}},
        },
    }


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return Response(canonical(openapi_document()), mimetype="application/json")
