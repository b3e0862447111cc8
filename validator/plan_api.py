"""The HTTP endpoints of execution plans (docs/protocol.md §7, §14): a customer proposes a
plan and consents to it at their own bank; customers the plan names, its banks and the
bank's regulators read it. Between banks a plan travels as a peer message (``plan``)."""

from __future__ import annotations

from flask import Blueprint, Response

from tchain.plans import PLAN_TYPE
from validator.api import _bank, _body, _json, _signer_key

__all__ = ["blueprint"]

blueprint = Blueprint("plans", __name__, url_prefix="/v1/plans")


def _id(bank: str, uid: str) -> str:
    return f"{bank}/{PLAN_TYPE}/{uid}"


@blueprint.post("")
def propose() -> Response:
    """201 with the plan's id and state: the key that signed the request owns a chain here,
    and becomes the plan's proposer; the plan goes to every other participant bank."""
    key = _signer_key()
    bank = _bank()
    execution, messages = bank.plans.propose(key, _body())
    bank.sender.deliver_all(messages)
    return _json({"id": execution.plan.id, "state": execution.state,
                  "plan": execution.plan.doc}, 201)


@blueprint.get("")
def listed() -> Response:
    """The plans known here that the signer may read."""
    return _json({"plans": _bank().plans.listed(_signer_key())})


@blueprint.get(f"/<bank>/{PLAN_TYPE}/<uid>")
def show(bank: str, uid: str) -> Response:
    """The plan's execution state, each instruction with its receipts, and its log."""
    key = _signer_key()
    with _bank().ledger.store.read() as r:
        execution = _bank().plans.readable(r, _id(bank, uid), key)
    return _json(execution.to_dict())


@blueprint.post(f"/<bank>/{PLAN_TYPE}/<uid>/consent")
def consent(bank: str, uid: str) -> Response:
    """A customer's signed consents to their holds (``{"consents": [signed plan intents]}``);
    200 with the plan's state (``approved`` once every contributor approved)."""
    _signer_key()
    execution, messages = _bank().plans.consent(_id(bank, uid), _body())
    _bank().sender.deliver_all(messages)
    return _json({"id": execution.plan.id, "state": execution.state})
