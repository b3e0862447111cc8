"""What a plan's consents say, and what a bank checks of another bank's receipts before it
approves its completion (docs/protocol.md §14): the signed entries that did exactly the
instruction, on exactly the chains the approvals named.

A receipt is checked with the keys of the banks that signed it and the chains the approvals'
key records give; nothing here trusts the completing bank's word for what its entries do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tchain.errors import BadRequestError, EncodingError, SignatureError
from tchain.model import Effect, PaymentBody, SignedEntry, SignedIntent
from tchain.plans.document import Instruction, Plan

__all__ = ["check_receipts", "check_release", "consent_body", "consents_of", "issue_memo"]


def consent_body(plan: Plan, seq: int) -> dict[str, Any]:
    """The body of the plan intent that consents to hold instruction ``seq``: what the
    customer signs, and all that their chain's hold entry needs to show it was agreed."""
    hold = plan.instruction(seq)
    assert hold.op == "hold" and hold.asset is not None and hold.amount is not None
    closer = plan.closer(seq)
    return {"plan": plan.id, "digest": plan.digest, "hold": seq, "asset": hold.asset,
            "amount": str(hold.amount), "to": closer.to if closer.op == "transfer" else None}


def consents_of(plan: Plan, account: str) -> list[tuple[int, dict[str, Any]]]:
    """Each hold of ``account`` in the plan, with the body of its consent."""
    return [(i.seq, consent_body(plan, i.seq)) for i in plan.holds() if i.account == account]


class Receipts:
    """What a completion's receipts are checked against: the banks' keys, the chains the
    approvals named (by address), the consents (by hold seq) and the hold entries completed
    so far (by hold seq)."""

    def __init__(self, plan: Plan, keys: Mapping[str, str], chains: Mapping[str, str],
                 consents: Mapping[int, SignedIntent],
                 hold_entry: Callable[[int], SignedEntry | None]) -> None:
        self.plan, self.keys, self.chains = plan, keys, chains
        self.consents, self.hold_entry = consents, hold_entry

    def signed(self, entry: SignedEntry, bank: str, what: str) -> SignedEntry:
        try:
            entry.verify(self.keys[bank])
        except SignatureError as e:
            raise SignatureError(f"the {what} is not signed by {bank}") from e
        return entry

    def held(self, seq: int) -> SignedEntry:
        entry = self.hold_entry(seq)
        if entry is None:
            raise BadRequestError(f"hold {seq} has no receipt in the log")
        return entry


def check_receipts(ins: Instruction, status: str, receipts: tuple[SignedEntry, ...],
                   time: int, r: Receipts) -> None:
    """Check that a completion's receipts do exactly instruction ``ins``.

    ``hold``: the ``plan`` entry on the account's chain carrying its consent and holding its
    amount (a failed hold: none). ``transfer``: the settle of the hold, whose evidence is the
    payee bank's credit of the payee's chain, whose evidence is that hold (a failed one: the
    release of the hold). ``release``: the release of the hold. ``await``: none, and
    not before its time. ``issue``: the payee's credit, whose evidence is the bank's issue
    on its own chain naming the plan and the instruction in its memo (a failed one: none).

    Raises:
        BadRequestError, SignatureError: naming what is not so.
    """
    what = f"instruction {ins.seq} ({ins.op})"
    try:
        if status == "failed":
            if ins.op == "transfer":  # its hold given back, the only way it can fail
                [release] = receipts
                check_release(release, ins.bank, r.held(ins.hold or 0), r)
            elif receipts:
                raise BadRequestError(f"a failed {what} carries no receipt")
            return
        if ins.op == "await":
            if receipts or (ins.until is not None and time < ins.until):
                raise BadRequestError(f"{what} completes without receipts, at {ins.until} or "
                                      f"later (dated {time})")
            return
        [entry] = receipts
        if ins.op == "hold":
            _check_hold(ins, r.signed(entry, ins.bank, f"receipt of {what}"), r)
        elif ins.op == "transfer":
            _check_transfer(ins, entry, r)
        elif ins.op == "release":
            check_release(entry, ins.bank, r.held(ins.hold or 0), r)
        else:
            _check_issue(ins, entry, r)
    except ValueError as e:  # one receipt was expected
        raise BadRequestError(f"{what} carries {len(receipts)} receipts, not one") from e
    except (EncodingError, IndexError) as e:
        raise BadRequestError(f"the receipt of {what} is not what it must be: {e}") from e


def _check_hold(ins: Instruction, entry: SignedEntry, r: Receipts) -> None:
    assert ins.account is not None and ins.asset is not None and ins.amount is not None
    consent = r.consents[ins.seq]
    if entry.kind != "plan" or entry.chain != r.chains[ins.account] or \
            entry.intent is None or entry.intent.id != consent.id or \
            entry.effects != (Effect(ins.asset, 0, ins.amount),) or entry.evidence:
        raise BadRequestError(f"the receipt of hold {ins.seq} is not the plan entry of "
                              f"{ins.account}'s chain that holds {ins.amount} {ins.asset} "
                              "with its consent")


def _check_transfer(ins: Instruction, settle: SignedEntry, r: Receipts) -> None:
    hold = r.held(ins.hold or 0)
    r.signed(settle, ins.bank, f"settle of transfer {ins.seq}")
    assert ins.to is not None
    payee_bank = ins.to.rpartition("*")[2]
    credit = r.signed(settle.evidence_entry(0), payee_bank, f"credit of transfer {ins.seq}")
    [held] = hold.effects
    if settle.kind != "settle" or settle.chain != hold.chain or len(settle.evidence) != 1 or \
            settle.effects != (Effect(held.asset, -held.held, -held.held),) or \
            credit.kind != "credit" or credit.chain != r.chains[ins.to] or \
            len(credit.evidence) != 1 or credit.evidence_entry(0).id != hold.id or \
            credit.effects != (Effect(held.asset, held.held, 0),):
        raise BadRequestError(f"the receipt of transfer {ins.seq} is not the settle of hold "
                              f"{ins.hold} by {ins.to}'s credit of it")


def issue_memo(plan: Plan, seq: int) -> str:
    """The memo of the issue that does instruction ``seq``: ties it to the plan on the chain."""
    return f"plan {plan.id} instruction {seq}"


def _check_issue(ins: Instruction, credit: SignedEntry, r: Receipts) -> None:
    assert ins.account is not None and ins.to is not None and ins.asset is not None and \
        ins.amount is not None
    r.signed(credit, ins.bank, f"credit of issue {ins.seq}")
    issue = r.signed(credit.evidence_entry(0), ins.bank, f"issue {ins.seq}")
    body = None if issue.intent is None else issue.intent.body
    if credit.kind != "credit" or credit.chain != r.chains[ins.to] or \
            len(credit.evidence) != 1 or credit.effects != (Effect(ins.asset, ins.amount, 0),) or \
            issue.kind != "issue" or issue.chain != r.chains[ins.account] or \
            not isinstance(body, PaymentBody) or body.to != credit.chain or \
            str(body.asset) != ins.asset or body.amount != ins.amount or \
            body.memo != issue_memo(r.plan, ins.seq):
        raise BadRequestError(f"the receipt of issue {ins.seq} is not {ins.to}'s credit of "
                              f"{ins.amount} {ins.asset} by the issue of {ins.account} for it")


def check_release(entry: SignedEntry, bank: str, hold: SignedEntry, r: Receipts) -> None:
    """``entry`` is ``bank``'s release of the plan's hold entry ``hold``."""
    r.signed(entry, bank, "release")
    [held] = hold.effects
    if entry.kind != "release" or entry.chain != hold.chain or len(entry.evidence) != 1 or \
            entry.evidence_entry(0).id != hold.id or \
            entry.effects != (Effect(held.asset, 0, -held.held),):
        raise BadRequestError(f"the release is not {bank}'s release of hold entry {hold.id}")
