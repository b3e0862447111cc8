"""The proof a bank keeps when a correspondent takes its payer's money and does not pass it
on (docs/adr/0015-correspondent-routes.md, docs/protocol.md §12 "Route unpaid").

A correspondent answers ``credited`` to a routed hold only with its own signed credit of it
carrying the next bank's signed credit of the hold it handed on. One that answers with a
credit of our hold (it took the money: its signature says so) without that (none, a forged
one, one of another hold, under another key than the one it names for the next bank) signed
its own accusation: the proof is its signed answer, and our hold inside it.
"""

from __future__ import annotations

from typing import Any

from tchain.errors import EncodingError, SignatureError, VerificationError
from tchain.keys import SigningKey
from tchain.messages import Message
from tchain.model import Effect, SignedEntry
from tchain.route import check_route_credit, routed_body

__all__ = ["ROUTE_UNPAID_FIELDS", "check_route_unpaid", "route_unpaid_proof"]

ROUTE_UNPAID_FIELDS = {"type", "reporter", "reporter_name", "culprit", "hold", "answer",
                       "reason", "time", "sig"}


def route_unpaid_proof(key: SigningKey, *, reporter: str, culprit_key: str, answer: Message,
                       hold: SignedEntry, reason: str, now: int) -> dict[str, Any]:
    """The reporter's signed account of a correspondent's ``credited`` that takes our routed
    ``hold`` and shows no next bank's credit of it."""
    proof: dict[str, Any] = {
        "type": "route_unpaid", "reporter": key.public_key, "reporter_name": reporter,
        "culprit": culprit_key, "hold": hold.doc, "answer": answer.doc,
        "reason": reason[:1000], "time": now}
    proof["sig"] = key.sign("proof", proof)
    return proof


def check_route_unpaid(proof: dict[str, Any]) -> str:
    """Steps 2 to 4 of a ``route_unpaid`` proof (the caller checked step 1: its fields and
    the reporter's signature); return what it shows.

    Raises:
        VerificationError: it does not show it.
    """
    culprit, reporter = proof["culprit"], proof["reporter_name"]
    try:
        # 2. the hold: the reporter's signed routed payment.
        hold = SignedEntry.from_dict(proof["hold"])
        hold.verify(proof["reporter"])
        body = routed_body(hold)
        if body is None or body.route is None or not body.route.via:
            raise VerificationError("the hold is not a routed payment through a correspondent")
        # 3. the culprit's credited answer, to the reporter, taking the hold.
        answer = Message.from_dict(proof["answer"])
        answer.verify(culprit)
        if answer.type != "credited" or answer.to != reporter or \
                answer.sender != body.route.via[0]:
            raise VerificationError(f"the answer is a {answer.type} from {answer.sender} to "
                                    f"{answer.to}, not the first correspondent's credited")
        credit = answer.entries["credit"]
        credit.verify(culprit)
        if credit.kind != "credit" or not credit.evidence or \
                credit.evidence_entry(0).raw != hold.raw or \
                credit.effects != (Effect(str(body.asset), body.amount, 0),):
            raise VerificationError("the culprit's credit does not take the reporter's hold")
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"the proof's documents do not verify: {e}") from e
    # 4. and shows no next bank's credit of the hold it handed on.
    try:
        check_route_credit(credit, hold, answer.fields.get("next"))
    except VerificationError as e:
        return (f"{answer.sender} took {body.amount} {body.asset} of {reporter}'s payer for "
                f"{body.to} and shows no credit of the next bank: {e.message}")
    raise VerificationError("the correspondent's credit carries the next bank's credit: it "
                            "passed the payment on")
