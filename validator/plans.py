"""Execution plans at one bank (docs/protocol.md §14): proposing, consents, approvals, and
the plan's log kept and passed on to every participant bank.

The core (tchain.plans) decides whether each signed document fits the plan; this module loads
the plan's log, asks, writes the longer log, and queues it for the other participants in the
same write transaction (the outbox, docs/protocol.md §11), so a crash loses neither. Each bank
sends the whole log as it has it, so a participant that missed a document, or got them out of
order, catches up from the next message it gets, and a repeat changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from tchain.errors import (
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    UnknownChainError,
)
from tchain.messages import Message
from tchain.plans import Execution, LogDoc, Plan, plan_document, plan_id, sign_log
from tchain.records import KeyRecord, make_record
from validator.flows import enqueue
from validator.ledger import Ledger
from validator.store import Reader, Writer

__all__ = ["MAX_LOG", "Plans", "plan_key"]

MAX_LOG = 1000  # documents in one plan's log: a message carrying it stays far below 1 MiB


def plan_key(plan: str) -> str:
    """The record id a plan is kept under: its id's SHA-256 (record ids are 32 bytes)."""
    return hashlib.sha256(plan.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Kept:
    """A plan as this bank keeps it: its log, and the consents of its own customers that
    reached it before it approved (they go out inside its approval)."""

    log: tuple[LogDoc, ...]
    consents: dict[str, LogDoc]

    def to_dict(self) -> dict[str, Any]:
        return {"log": [d.doc for d in self.log],
                "consents": {a: d.doc for a, d in sorted(self.consents.items())}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Kept:
        return cls(tuple(LogDoc.from_dict(x) for x in d["log"]),
                   {a: LogDoc.from_dict(x) for a, x in d["consents"].items()})


class Plans:
    """The plans this bank takes part in."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.bank = ledger.bank

    # --- reads ---------------------------------------------------------------------------

    def keys(self, r: Reader) -> dict[str, str]:
        """The banks' keys a plan's log is checked with: ours and our pinned peers'."""
        return {self.bank.name: self.bank.public_key,
                **{p["name"]: p["key"] for p in r.peers()}}

    def _kept(self, r: Reader, plan: str) -> Kept | None:
        record = r.record("plans", plan_key(plan))
        return None if record is None else Kept.from_dict(record)

    def execution(self, r: Reader, plan: str) -> Execution:
        kept = self._kept(r, plan)
        if kept is None:
            raise NotFoundError(f"plan {plan} is not known at {self.bank.name}")
        return Execution.replay(kept.log, self.keys(r))

    def readable(self, r: Reader, plan: str, key: str) -> Execution:
        """The plan's execution, if ``key`` may read it: a regulator, a participant bank, or
        the owner of a chain here that the plan names (proposer, account or payee).

        Raises:
            NotFoundError: no such plan here. ForbiddenError: not for this key.
        """
        execution = self.execution(r, plan)
        if not self._may_read(r, execution.plan, key):
            raise ForbiddenError(f"key {key} may not read plan {plan}: only the customers it "
                                 "names, its banks and the bank's regulators may")
        return execution

    def _may_read(self, r: Reader, plan: Plan, key: str) -> bool:
        if r.is_regulator(key) or any(p["key"] == key and p["name"] in plan.banks
                                      for p in r.peers()):
            return True
        chain = r.chain_by_owner(key)
        state = None if chain is None else r.state(chain)
        return state is not None and state.owner == key and state.address in _named(plan)

    def listed(self, key: str) -> list[dict[str, Any]]:
        """The plans ``key`` may read here: id, state and proposer of each."""
        with self.ledger.store.read() as r:
            out = []
            for _, record in r.records("plans"):
                execution = Execution.replay(Kept.from_dict(record).log, self.keys(r))
                if self._may_read(r, execution.plan, key):
                    out.append({"id": execution.plan.id, "state": execution.state,
                                "proposer": execution.plan.proposer})
            return out

    # --- what customers ask -----------------------------------------------------------------

    def propose(self, owner_key: str, plan_file: Any) -> tuple[Execution, list[str]]:
        """A customer of this bank proposes a plan (the plan file as JSON): this bank names
        it, signs the proposal and sends it to every other participant.

        Raises:
            ForbiddenError: the key owns no chain here; EncodingError: the file is no plan;
            BadRequestError: this bank is not a contributor, or a bank of it is not pinned.
        """
        now = self.ledger.clock()

        def work(w: Writer) -> tuple[Execution, list[str]]:
            chain = w.chain_by_owner(owner_key)
            state = None if chain is None else w.state(chain)
            if state is None or state.owner != owner_key:
                raise ForbiddenError(f"key {owner_key} owns no chain at {self.bank.name}: a "
                                     "plan is proposed by a customer of a contributing bank")
            doc = plan_document(plan_file, plan_id_=plan_id(self.bank.name),
                                proposer=state.address, time=now)
            plan = Plan.from_dict(doc)
            proposal = sign_log(self.bank.key, "proposal", plan=plan.id,
                                plan_digest=plan.digest, by=self.bank.name, time=now,
                                document=plan.doc)
            execution = Execution.start(proposal, self.keys(w))
            return self._decided(w, execution, Kept((), {}), now)

        return self.ledger.store.write(work)

    def consent(self, plan: str, doc: Any) -> tuple[Execution, list[str]]:
        """A customer's signed consent to a plan, at their own bank: kept, and once every
        customer here whose funds the plan moves consented, this bank approves.

        Raises:
            NotFoundError: the plan is not known here (yet); UnknownChainError: the signer is
            not a customer here; BadRequestError: a consent of someone the plan does not ask,
            or to another version; SignatureError: not signed by the chain's owner.
        """
        consent = LogDoc.from_dict(doc)
        if consent.type != "consent" or consent.plan != plan:
            raise BadRequestError(f"a consent to plan {plan} is sent here, got a "
                                  f"{consent.type} of {consent.plan}")
        now = self.ledger.clock()

        def work(w: Writer) -> tuple[Execution, list[str]]:
            kept = self._kept(w, consent.plan)
            if kept is None:
                raise NotFoundError(f"plan {consent.plan} is not known at {self.bank.name}")
            execution = Execution.replay(kept.log, self.keys(w))
            plan = execution.plan
            if consent.plan_digest != plan.digest:
                raise BadRequestError(f"the consent is to another version of {plan.id}")
            if consent.by not in plan.signers(self.bank.name):
                raise BadRequestError(f"plan {plan.id} asks {consent.by} for no consent here")
            record = self._record(w, consent.by)
            if record.chain != consent.body["chain"]:
                raise BadRequestError(f"the consent names chain {consent.body['chain']}, "
                                      f"{consent.by}'s is {record.chain}")
            consent.verify(record.owner)
            if self.bank.name in execution.approvals or execution.rejection is not None:
                return execution, []  # decided already: a consent again changes nothing
            kept = Kept(kept.log, {**kept.consents, consent.by: consent})
            return self._decided(w, execution, kept, now)

        return self.ledger.store.write(work)

    # --- what peers send -------------------------------------------------------------------

    def receive(self, w: Writer, message: Message, now: int) -> None:
        """A peer's ``plan`` message: its log, appended to ours where it is new.

        Raises:
            EncodingError, BadRequestError, SignatureError, ForbiddenError, ConflictError:
            a document does not fit the plan (nothing is written).
        """
        docs = message.fields["log"]
        if not isinstance(docs, list) or not 1 <= len(docs) <= MAX_LOG:
            raise BadRequestError(f"a plan message carries the plan's log, 1..{MAX_LOG} "
                                  "documents")
        theirs = [LogDoc.from_dict(d) for d in docs]
        kept = self._kept(w, theirs[0].plan)
        execution = Execution.replay(kept.log if kept else theirs[:1], self.keys(w))
        if message.sender not in execution.plan.banks or \
                self.bank.name not in execution.plan.banks:
            raise ForbiddenError(f"{message.sender} sent plan {execution.plan.id}, which "
                                 f"does not name both it and {self.bank.name}")
        for doc in theirs:
            execution = execution.append(doc)
        self._decided(w, execution, kept or Kept((), {}), now)

    # --- this bank's own word ------------------------------------------------------------

    def _decided(self, w: Writer, execution: Execution, kept: Kept, now: int
                 ) -> tuple[Execution, list[str]]:
        """Add this bank's own word where it is due (its approval, once its customers
        consented; its rejection, if the plan names a customer it does not have), keep the
        log, and send it on if this bank added to it. Returns the execution and the ids of
        the messages queued."""
        mine = self._approval(w, execution, kept, now)
        if mine is not None:
            execution = execution.append(mine)
        sent = len(kept.log)
        w.put_record("plans", plan_key(execution.plan.id),
                     Kept(execution.docs, kept.consents).to_dict())
        if not any(d.by == self.bank.name for d in execution.docs[sent:]):
            return execution, []  # nothing of ours: each bank sends its own word to all
        return execution, self._send(w, execution, now)

    def _approval(self, w: Writer, execution: Execution, kept: Kept, now: int
                  ) -> LogDoc | None:
        """Our approval (or rejection) of the plan, if it is due now."""
        plan = execution.plan
        if plan.role(self.bank.name) != "contributor" or execution.rejection is not None or \
                self.bank.name in execution.approvals:
            return None
        missing = [a for a in _named(plan, self.bank.name)
                   if self.ledger.chain_of_address(w, a) is None]
        if missing:
            return sign_log(self.bank.key, "rejection", plan=plan.id, plan_digest=plan.digest,
                            by=self.bank.name, time=now, error=UnknownChainError.code,
                            reason=f"{', '.join(missing)} are not customers of "
                                   f"{self.bank.name}")
        signers = plan.signers(self.bank.name)
        if any(a not in kept.consents for a in signers):
            return None
        return sign_log(self.bank.key, "approval", plan=plan.id, plan_digest=plan.digest,
                        by=self.bank.name, time=now,
                        consents=[kept.consents[a] for a in signers],
                        records=[self._record(w, a) for a in signers])

    def _record(self, r: Reader, address: str) -> KeyRecord:
        chain = self.ledger.chain_of_address(r, address)
        state = None if chain is None else r.state(chain)
        if state is None:
            raise UnknownChainError(f"{address} is not a customer of {self.bank.name}")
        return KeyRecord.from_dict(make_record(self.bank.key, address=state.address,
                                               owner=state.owner, chain=state.chain,
                                               validator=self.bank.name))

    def _send(self, w: Writer, execution: Execution, now: int) -> list[str]:
        """Queue the log for every other participant bank."""
        return [enqueue(w, self.bank.key, self.bank.name, bank, "plan", now, flow=None,
                        give_up=None, log=[d.doc for d in execution.docs])
                for bank in execution.plan.banks if bank != self.bank.name]


def _named(plan: Plan, bank: str | None = None) -> list[str]:
    """The addresses a plan names (at ``bank``): its proposer, accounts and payees."""
    out = [plan.proposer] + [a for i in plan.instructions for a in (i.account, i.to)
                             if a is not None]
    seen = dict.fromkeys(out)
    return [a for a in seen if bank is None or a.rpartition("*")[2] == bank]
