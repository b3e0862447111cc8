"""``tchain plan ...``: propose an execution plan across banks, consent to it, follow it
(docs/protocol.md §14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.client import BankClient
from cli.common import open_session
from cli.errors import BadUsageError, BankError, SecurityError
from cli.options import json_option
from cli.output import emit, table, when
from cli.session import Session
from tchain.clock import now_ms
from tchain.errors import EncodingError, TChainError
from tchain.intents import sign_intent
from tchain.plans import Execution, LogDoc, Plan, consents_of, plan_from_file

__all__ = ["checked_view", "plan", "propose_plan", "sign_plan", "swap_plan_file", "view_plan"]


@click.group()
def plan() -> None:
    """Plans across banks: propose one, sign it, follow it."""


def _client(session: Session) -> tuple[str, str, BankClient]:
    """Your chain, your address and your bank's client."""
    chain, bank = session.wallet.require_chain()
    address = session.wallet.address
    assert address is not None, "a wallet with a chain has its address"
    return chain, address, BankClient(bank.url, session.key, bank=bank.name,
                                      label=f"your bank {bank.name}")


@plan.command("propose")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def propose(ctx: click.Context, file: Path) -> None:
    """Propose the plan in FILE (JSON, or TOML if it ends in .toml) at your bank, which names
    it and sends it to every bank of the plan; prints the plan id. Nothing moves until every
    customer whose funds move signed it (`tchain plan sign ID`) and every contributing bank
    approved it."""
    try:
        plan_file = plan_from_file(file.read_text("utf-8"), toml=file.suffix == ".toml")
    except (EncodingError, UnicodeDecodeError) as e:
        raise BadUsageError(f"{file} is not a plan file: {e}") from e
    answer = propose_plan(open_session(ctx), plan_file)
    emit(ctx, answer, str(answer["id"]))


def propose_plan(session: Session, plan_file: dict[str, Any]) -> dict[str, Any]:
    """Propose a plan file's plan at the customer's bank: its answer, with the plan's id."""
    return _an_object(_client(session)[2].plan_propose(plan_file), "proposal")


@plan.command("sign")
@click.argument("plan_id")
@json_option
@click.pass_context
def sign(ctx: click.Context, plan_id: str) -> None:
    """Consent to plan PLAN_ID with your key: one signed consent to each hold of yours, so
    your bank may hold it in its turn and pay it where the plan says. The plan is read from
    your bank and checked here (its log under the banks' keys, its digest made here) before
    you sign it."""
    answer, gives = sign_plan(open_session(ctx), plan_id)
    emit(ctx, answer, f"signed plan {plan_id} (you give {', '.join(gives)}); it is "
                      f"{answer['state']}")


def sign_plan(session: Session, plan_id: str) -> tuple[dict[str, Any], list[str]]:
    """Consent to each hold of ours in plan ``plan_id``, once its log verifies here: the
    bank's answer, and what we give (``AMOUNT UAI`` each)."""
    chain, address, client = _client(session)
    shown = checked_view(client.plan(plan_id), plan_id, _keys(session))
    document = Plan.from_dict(shown["plan"])  # its digest made here, not taken from the bank
    holds = consents_of(document, address)
    if not holds:
        raise BadUsageError(f"plan {plan_id} holds none of your funds: it asks no consent of "
                            f"{address}")
    consents = [sign_intent(session.key, "plan", chain, 0, now_ms(), body) for _, body in holds]
    answer = _an_object(client.plan_consent(plan_id, {"consents": consents}), "consent")
    gives = [f"{i.amount} {i.asset}" for i in document.instructions if i.account == address]
    return answer, gives


@plan.command("show")
@click.argument("plan_id")
@json_option
@click.pass_context
def show(ctx: click.Context, plan_id: str) -> None:
    """Show plan PLAN_ID as your bank has it, its log checked here under the banks' keys (your
    bank's and its pinned peers'): its state (proposed, approved, executing, completed,
    compensating, compensated or failed), derived here, who approved it and confirmed its
    first irreversible step, and each instruction with its receipts."""
    shown = view_plan(open_session(ctx), plan_id)
    rows = [[i["seq"], i["bank"], _what(i), i["status"], len(i["receipts"])]
            for i in shown["instructions"]]
    approved = ", ".join(shown["approved_by"]) or "none yet"
    if "confirmed_by" in shown:  # the round before its first irreversible step (§14)
        approved += f"; confirmed by {', '.join(shown['confirmed_by']) or 'none yet'}"
    emit(ctx, shown, f"plan {shown['id']}: {shown['state']} (approved by {approved}; "
                     f"deadline {when(shown['plan']['deadline'])})\n"
                     + table(["seq", "bank", "instruction", "status", "receipts"], rows))


def swap_plan_file(legs: list[tuple[str, str, str, str]], deadline_in_ms: int
                   ) -> dict[str, Any]:
    """The plan file of a swap: each leg ``(account, asset, amount, to)`` held first (all or
    nothing until every hold stands), then each hold transferred to its ``to``; every bank of
    an account a contributor."""
    banks = list(dict.fromkeys(account.rpartition("*")[2] for account, *_ in legs))
    holds = [{"op": "hold", "account": a, "asset": asset, "amount": n}
             for a, asset, n, _ in legs]
    transfers = [{"op": "transfer", "hold": i, "to": leg[3]}
                 for i, leg in enumerate(legs, start=1)]
    return {"deadline_in": deadline_in_ms,
            "participants": [{"bank": b, "role": "contributor"} for b in banks],
            "instructions": holds + transfers}


def _an_object(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("id", ""), str):
        raise BankError(f"your bank's answer to the {what} is not a plan's")
    return answer


def view_plan(session: Session, plan_id: str) -> dict[str, Any]:
    """Plan ``plan_id`` as our bank keeps it, its log checked here (:func:`checked_view`)."""
    return checked_view(_client(session)[2].plan(plan_id), plan_id, _keys(session))


def _keys(session: Session) -> dict[str, str]:
    """The banks' keys this wallet knows: its bank's, pinned, and the peers that bank names
    in its signed document."""
    _, bank = session.wallet.require_chain()
    return {bank.name: bank.key, **{n: p.key for n, p in session.banks().peers().items()}}


def checked_view(shown: dict[str, Any], plan_id: str, keys: dict[str, str]
                 ) -> dict[str, Any]:
    """The plan as this wallet sees it: the bank's log replayed here, every document checked
    under the key of the bank that signed it (your bank's, pinned in the wallet, and the peers
    its signed document names), and the state derived here from the log, not taken from the
    bank's word.

    Raises:
        SecurityError: the log does not verify, is of another plan, or names a bank whose key
        this wallet does not know.
    """
    try:
        execution = Execution.replay([LogDoc.from_dict(d) for d in shown["log"]], keys)
    except (TChainError, KeyError, TypeError, IndexError) as e:
        why = e.message if isinstance(e, TChainError) else f"malformed ({e!r})"
        raise SecurityError(f"your bank's log of plan {plan_id} does not verify: {why}") from e
    if execution.plan.id != plan_id:
        raise SecurityError(f"your bank answered plan {execution.plan.id} for {plan_id}")
    return execution.to_dict()


def _what(i: dict[str, Any]) -> str:
    if i["op"] == "hold":
        return f"hold {i['amount']} {i['asset']} of {i['account']}"
    if i["op"] == "transfer":
        return f"transfer hold {i['hold']} to {i['to']}"
    if i["op"] == "release":
        return f"release hold {i['hold']}"
    if i["op"] == "issue":
        return f"issue {i['amount']} {i['asset']} to {i['to']}"
    return f"await {when(i['until'])}" if "until" in i else f"await {i['after']}"


@plan.command("list")
@json_option
@click.pass_context
def list_plans(ctx: click.Context) -> None:
    """List the plans your bank knows that name you."""
    _, _, client = _client(open_session(ctx))
    found = client.plans()
    rows = [[p["id"], p["state"], p["proposer"]] for p in found["plans"]]
    emit(ctx, found, table(["plan", "state", "proposer"], rows) if rows else "no plans")
