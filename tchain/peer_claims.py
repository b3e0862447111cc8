"""What a bank checks of a peer's signed message before it believes it (docs/protocol.md §13).

A pinned key proves which bank sent a message, never that what it says is true. The checks here
need nothing but the message: that the customer's intent inside a hold or a take verifies under
the key the peer's own key record names, and that the entry the peer signed agrees with that
intent. A message that fails one could only come from a dishonest (or broken) bank: the
refusal is a :class:`MisconductError`, and the message is kept as evidence that anyone can
check again from the message alone (tchain.proofs, ``misconduct``).

What the peer may hand us (its position) needs our books and is checked in the engine
(tchain.books.check_incoming).
"""

from __future__ import annotations

from tchain.errors import (
    BadRequestError,
    BadRequestRuleError,
    EncodingError,
    MisconductError,
    RuleError,
    SignatureError,
    TChainError,
    VerificationError,
)
from tchain.htlc import claim_fits_lock, claimed_lock, lock_body, lock_terms_error
from tchain.messages import SIGNERS, Message
from tchain.model import (
    GENESIS_PREV,
    Effect,
    LockBody,
    PaymentBody,
    PlanBody,
    SignedEntry,
    SignedIntent,
    TakeBody,
)
from tchain.plans.admission import check_words
from tchain.plans.document import Plan
from tchain.plans.log import LogDoc
from tchain.records import KeyRecord
from tchain.route import check_route
from tchain.rules import TIME_WINDOW_MS

__all__ = ["checked_claim", "checked_hold", "checked_lock", "checked_take", "credits_the_payee",
           "crossing", "fault", "incoming", "standing"]


def _bad(what: str) -> MisconductError:
    return MisconductError.of(BadRequestError(what))


def _customer_intent(message: Message, field: str, sender_key: str, evidence: int = 0
                     ) -> SignedEntry:
    """The entry in ``field`` whose customer's intent verifies under the key the message's key
    record names (the record signed by the sender, of the entry's chain, at the sender), and
    that carries ``evidence`` entries (a claim, its lock; others none)."""
    entry = message.entries[field]
    signer = next(name for name, of in SIGNERS.items() if of == field)
    record: KeyRecord = message.records[signer]
    try:
        record.verify(sender_key)
    except SignatureError as e:
        raise MisconductError.of(SignatureError(f"the {signer} record is not signed by "
                                                f"{message.sender}")) from e
    if record.chain != entry.chain or record.validator != message.sender:
        raise _bad(f"the {signer} record is of chain {record.chain} at {record.validator}, not "
                   f"of the {field}'s chain {entry.chain} at {message.sender}")
    try:
        intent = standing(entry, field, evidence)
    except RuleError as e:
        raise _bad(e.message) from e
    try:
        intent.verify(record.owner)
    except SignatureError as e:
        raise MisconductError.of(SignatureError(f"the {field}'s intent does not verify under the "
                                                f"key {record.owner} that {message.sender} "
                                                f"gives for chain {entry.chain}")) from e
    return entry


def standing(entry: SignedEntry, field: str, evidence: int = 0) -> SignedIntent:
    """The owner's intent inside a peer's entry that a chain could hold: it carries its
    owner's intent of its kind for its chain, stands after a genesis (height 1 or more, a
    prev that is not the zeros), carries no evidence, and its intent's seq is one a chain of
    that height could have reached. Found by the outside attacker: holds, and then offers,
    that no chain could hold were credited and listed.

    Raises:
        RuleError: naming what cannot be (bad_request).
    """
    intent = entry.intent
    if intent is None or intent.type != entry.kind or intent.chain != entry.chain:
        raise BadRequestRuleError(
            f"the {field} does not carry its owner's {entry.kind} intent for its "
            "chain")
    # a plan's hold carries a consent signed before its turn, with seq 0 (tchain.verify)
    seqs = range(0, 1) if entry.kind == "plan" else range(1, entry.height + 1)
    if entry.height < 1 or entry.prev == GENESIS_PREV or len(entry.evidence) != evidence or \
            intent.seq not in seqs:
        raise BadRequestRuleError(
            f"the {field} cannot stand in a chain: a {entry.kind} at height "
            f"{entry.height} after {entry.prev[:16]}, with {len(entry.evidence)} "
            f"evidence entries and its intent's seq {intent.seq}")
    # a bank takes an intent only within its time window of its clock, the entry's time (a
    # plan's consent is signed before its turn); the nineteenth tester had holds credited
    # whose intent was dated a day, and 400 days, after them
    if entry.kind != "plan" and abs(intent.time - entry.time) > TIME_WINDOW_MS:
        raise BadRequestRuleError(
            f"the {field}'s intent is dated {intent.time}, more than {TIME_WINDOW_MS} ms from "
            f"its entry's {entry.time}: no bank takes an intent outside its time window")
    return intent


def checked_hold(message: Message, sender_key: str
                 ) -> tuple[SignedEntry, PaymentBody | PlanBody]:
    """A transfer's hold (a payment's, or a plan's), its payer's signature checked, holding
    exactly what it pays.

    Raises:
        MisconductError: the hold or its payer's signature is not what it must be.
    """
    kind = message.entries["hold"].kind
    hold, body = _holding(message, "hold", "plan" if kind == "plan" else "payment", sender_key)
    assert isinstance(body, PaymentBody | PlanBody)
    if isinstance(body, PaymentBody) and body.route is not None:  # from the message alone,
        check_route(hold, message.sender, message.to)  # so a misconduct proof shows it
    return hold, body


def checked_take(message: Message, sender_key: str) -> tuple[SignedEntry, TakeBody]:
    """A take message's take, its taker's signature checked, holding exactly what it gives.

    Raises:
        MisconductError: the take or its taker's signature is not what it must be.
    """
    take, body = _holding(message, "take", "take", sender_key)
    assert isinstance(body, TakeBody)
    return take, body


def _holding(message: Message, field: str, kind: str, sender_key: str
             ) -> tuple[SignedEntry, PaymentBody | PlanBody | TakeBody]:
    """The entry in ``field``: of ``kind``, its customer's intent checked, and holding exactly
    what that intent gives (a payment's amount, a take's ``sell``)."""
    raw = message.entries[field]
    raw_body = raw.intent.body if raw.intent is not None else None
    # a correspondent's hold carries the hold it hands on (tchain.route)
    forwards = isinstance(raw_body, PaymentBody) and raw_body.route is not None and \
        raw_body.route.forward is not None
    entry = _customer_intent(message, field, sender_key, 1 if forwards else 0)
    body = entry.intent.body if entry.intent is not None else None
    if entry.kind != kind or not isinstance(body, PaymentBody | PlanBody | TakeBody):
        raise _bad(f"a {message.type} message carries a signed {kind}, got a {entry.kind}")
    gives = (body.sell.asset, body.sell.amount) if isinstance(body, TakeBody) else \
        (body.asset, body.amount)
    if entry.effects != (Effect(str(gives[0]), 0, gives[1]),):
        raise _bad(f"the {field} does not hold exactly what its {kind} gives")
    return entry, body


def checked_lock(message: Message, sender_key: str) -> tuple[SignedEntry, LockBody]:
    """A lock message's lock, its payer's signature checked, holding exactly what it locks.

    Raises:
        MisconductError: the lock or its payer's signature is not what it must be.
    """
    lock = _customer_intent(message, "lock", sender_key)
    try:
        body = lock_body(lock)
    except VerificationError as e:
        raise _bad(e.message) from e
    if lock.effects != (Effect(str(body.asset), 0, body.amount),):
        raise _bad("the lock does not hold exactly what its intent locks")
    # the lock rules its bank checked when it signed (at the entry's time), and the deadline
    # it gives the lock: a peer's lock of 3 s, of 2^53 ms, or of its payer's own asset was
    # acked and kept open before (the seventh outside attacker)
    terms = lock_terms_error(lock.time, body, message.records["locker"].address)
    if terms is not None:
        raise _bad(f"the lock breaks the lock rules at its time {lock.time}: {terms}")
    if message.fields["deadline"] != body.expires:
        raise _bad(f"a lock message's deadline is its lock's expires {body.expires}, got "
                   f"{message.fields['deadline']}")
    return lock, body


def checked_claim(message: Message, sender_key: str) -> tuple[SignedEntry, SignedEntry]:
    """A claim a payee's bank sends (the ``claimed`` message, the ``lock_claimed`` answer):
    its payee's signature checked, and the claim what the payer's chain verifier would take
    (tchain.htlc.claim_fits_lock: the lock's payee, before its expiry, the preimage of its
    hash), crediting exactly what the lock holds. Return the claim and the lock it carries.

    Raises:
        MisconductError: shown from the message alone.
    """
    claim = _customer_intent(message, "claim", sender_key, evidence=1)
    try:
        lock = claimed_lock(claim)
        body = claim_fits_lock(claim, lock)
    except VerificationError as e:
        raise _bad(f"the claim does not open its lock: {e.message}") from e
    if claim.effects != (Effect(str(body.asset), body.amount, 0),):
        raise _bad("the claim does not credit exactly what its lock holds")
    return claim, lock


def credits_the_payee(credit: SignedEntry, payee: str) -> None:
    """A peer's credit answering our hold credits ``payee``, the chain our payer paid.

    Raises:
        MisconductError: it credits another chain.
    """
    if credit.chain != payee:
        raise _bad(f"the credit is to chain {credit.chain}, not to the payee {payee} the hold "
                   "pays")


def incoming(message: Message) -> tuple[str, int] | None:
    """What a transfer, a lock or a take would give its receiver, (asset, amount): a hold's
    payment, a lock's amount; what a taker gives for the receiver's maker's offer. Its shape
    already checked."""
    body = _moving(message)
    if isinstance(body, PaymentBody | PlanBody | LockBody):
        return str(body.asset), body.amount
    if isinstance(body, TakeBody):
        return str(body.sell.asset), body.sell.amount
    return None


def crossing(message: Message) -> list[str]:
    """Every asset a transfer, a lock or a take would move between the two banks, either way."""
    body = _moving(message)
    if isinstance(body, PaymentBody | PlanBody | LockBody):
        return [str(body.asset)]
    if isinstance(body, TakeBody):
        return [str(body.sell.asset), str(body.buy.asset)]
    return []


def _moving(message: Message) -> PaymentBody | PlanBody | LockBody | TakeBody | None:
    """The intent of what a message would move between two banks (a hold, a lock, a take).
    A lock was missing here: the misconduct proof of a lock then failed its own check, and the
    lock was answered with an unsigned ``invalid`` (the seventh outside attacker)."""
    for field in ("hold", "lock", "take"):
        entry = message.entries.get(field)
        if entry is not None:
            body = None if entry.intent is None else entry.intent.body
            return body if isinstance(body, PaymentBody | PlanBody | LockBody | TakeBody) \
                else None
    return None


def fault(message: Message, sender_key: str) -> str | None:
    """What is wrong with what a peer's message carries, found from the message alone (an
    entry of its evidence that does not verify, a hold or take that does not hold what its
    customer signed, an intent its customer did not sign), or None."""
    try:
        for entry in message.entries.values():
            for index in range(len(entry.evidence)):
                entry.evidence_entry(index).verify()
    except (EncodingError, SignatureError) as e:
        return f"evidence does not verify: {e}"
    check = _CHECKS.get(message.type)
    if check is not None:
        try:
            check(message, sender_key)
        except MisconductError as e:
            return e.message
    return None


def checked_plan_log(message: Message, sender_key: str) -> None:
    """A ``plan`` message's log, from its proposal on, dated and coded as §14 says
    (tchain.plans.admission); a log that does not parse is malformed, not misconduct.

    Raises:
        MisconductError: naming the document that breaks it.
    """
    try:
        docs = [LogDoc.from_dict(d) for d in message.fields.get("log") or ()]
        plan = Plan.from_dict(docs[0].body["document"]) if docs and \
            docs[0].type == "proposal" else None
    except TChainError:
        return
    if plan is not None:
        check_words(plan, docs, ())


# What fault() checks of each kind of message that carries a customer's signed entry (and of
# a plan's log).
_CHECKS = {"transfer": checked_hold, "take": checked_take, "lock": checked_lock,
           "claimed": checked_claim, "lock_claimed": checked_claim, "plan": checked_plan_log}
