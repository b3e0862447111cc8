"""The HTTP endpoints of execution plans (docs/protocol.md §7, §14): a customer proposes a
plan and consents to it at their own bank; customers the plan names, its banks and the
bank's regulators read it. Between banks a plan travels as a peer message (``plan``)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from tchain.errors import EncodingError
from tchain.keys import is_hex
from tchain.plans import PLAN_TYPE
from validator.plans import MAX_LISTED
from validator.web import current_bank, int_arg, json_response, request_body, signer_key

__all__ = ["blueprint"]

blueprint = Blueprint("plans", __name__, url_prefix="/v1/plans")


def _id(bank: str, uid: str) -> str:
    return f"{bank}/{PLAN_TYPE}/{uid}"


@blueprint.post("")
def propose() -> Response:
    """201 with the plan's id and state: the key that signed the request owns a chain here,
    and becomes the plan's proposer; the plan goes to every other participant bank."""
    key = signer_key()
    bank = current_bank()
    execution, messages = bank.plans.propose(key, request_body())
    bank.sender.try_at_once(messages)
    return json_response({"id": execution.plan.id, "state": execution.state,
                  "plan": execution.plan.doc}, 201)


@blueprint.get("")
def listed() -> Response:
    """A page of the plans known here that the signer may read, from their kept summaries:
    ``after`` the cursor the last page gave as ``next``, ``limit`` plan records to read (a page
    may show fewer, or none, and still have a next)."""
    key = signer_key()
    after = request.args.get("after")
    if after is not None and not is_hex(after, 64):
        raise EncodingError(f"after is the 64 hex of a page's next, got {after!r}")
    limit = int_arg("limit", MAX_LISTED, MAX_LISTED, minimum=1)
    plans, following = current_bank().plans.listed(key, after, limit)
    return json_response({"plans": plans, **({"next": following} if following else {})})


@blueprint.get(f"/<bank>/{PLAN_TYPE}/<uid>")
def show(bank: str, uid: str) -> Response:
    """The plan's execution state, each instruction with its receipts, and its log."""
    key = signer_key()
    with current_bank().ledger.store.read() as r:
        execution = current_bank().plans.readable(r, _id(bank, uid), key)
    return json_response(execution.to_dict())


@blueprint.post(f"/<bank>/{PLAN_TYPE}/<uid>/consent")
def consent(bank: str, uid: str) -> Response:
    """A customer's signed consents to their holds (``{"consents": [signed plan intents]}``);
    200 with the plan's state (``approved`` once every contributor approved)."""
    signer_key()
    execution, messages = current_bank().plans.consent(_id(bank, uid), request_body())
    current_bank().sender.try_at_once(messages)
    return json_response({"id": execution.plan.id, "state": execution.state})
