"""Offline chain verification (PROTOCOL.md §5), one entry at a time.

Anyone who knows a validator's public key and name can check a chain it serves, with no other
ledger: feed the entries in height order to :class:`ChainVerifier`; it keeps only the chain's
state (not its entries), so a chain of any length verifies in flat memory, page by page.

For each entry, in order:
  1. the entry's ``sig`` verifies under its ``validator`` key, and that key is the chain's;
  2. ``height`` and ``prev`` link to the entry before (the genesis: height 0, the zeros, and a
     register intent that names this validator's name as its bank);
  3. a non-null ``intent`` verifies under the chain's current owner key, names this chain, has
     the type the entry's kind says, and its ``seq`` is the last seq + 1;
  4. ``evidence`` verifies: a credit carries exactly one signed debit naming this chain, never
     one already credited; a claim the lock it claims, for this chain, never claimed before,
     before its expiry and with the preimage of its hash; a settle carries the peer's signed
     entry that did the other side of a flow (for a lock, the payee's claim), a fill the take
     it answers (never one an earlier fill or settle answered), a release the entry whose
     hold it gives back (a lock's no earlier than its expiry); other kinds carry none;
  5. the effects are the ones the intent, the evidence or the hold being closed (or, for a
     fill, filled) calls for, and the running balances never break the balance rule of §4.

A peer's entry in evidence is checked against the key it names: which keys belong to which
banks is the pinning a bank does, outside any one chain.

The signature checks are most of the cost and depend on nothing but their own bytes: inside
:meth:`ChainVerifier.collecting_signatures` the verifier collects them instead, for the caller
to check elsewhere (in other processes, a page at a time, see cli.parallel_verify); the entries
fed meanwhile are verified only once every batch taken has been found valid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tchain.errors import EncodingError, SignatureError, VerificationError
from tchain.htlc import claim_fits_lock, claimed_lock
from tchain.keys import verify_digest
from tchain.model import (
    GENESIS_PREV,
    Effect,
    LockBody,
    PaymentBody,
    PlanBody,
    RecoverBody,
    RedeemBody,
    RegisterBody,
    SignedEntry,
    SignedIntent,
)
from tchain.route import check_nested, forwarded, next_hop, route_credit_parts, routed_body
from tchain.state import ChainState, entry_effects

__all__ = ["ChainVerifier", "DeferredSignatures", "Signature", "first_invalid", "verify_chain"]

Signature = tuple[str, bytes, str]  # public key (hex), digest, signature (hex)


def first_invalid(signatures: Sequence[Signature]) -> int | None:
    """The index of the first signature that does not verify, or None if all do."""
    for index, (key, message_digest, sig) in enumerate(signatures):
        try:
            verify_digest(key, message_digest, sig)
        except SignatureError:
            return index
    return None


@dataclass
class DeferredSignatures:
    """Signature checks a verifier collected, each with the error it stands for."""

    signatures: list[Signature] = field(default_factory=list)
    # the error of each, as a format and its arguments: made only if it is raised
    failures: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def refuse(self, index: int | None) -> None:
        """Raise the error of the signature at ``index`` (what first_invalid found), if any.

        Raises:
            VerificationError: naming the entry and the signature that failed.
        """
        if index is not None:
            failure, args = self.failures[index]
            raise VerificationError(failure.format(*args))

    def check(self) -> None:
        """Check them all here (see first_invalid and refuse)."""
        self.refuse(first_invalid(self.signatures))

_OWNER_KINDS = {"payment", "issue", "redeem", "rotate_key", "offer", "cancel", "take",
                "cancel_recovery", "lock", "claim"}
_CLOSING_KINDS = {"cancel", "settle", "release"}
_PEER_EVIDENCE_KINDS = {"settle", "fill"}  # carry the peer's entry (and its evidence), signed


def _as_entry(entry: SignedEntry | dict[str, Any] | bytes) -> SignedEntry:
    if isinstance(entry, SignedEntry):
        return entry
    try:
        return SignedEntry.from_bytes(entry) if isinstance(entry, bytes) \
            else SignedEntry.from_dict(entry)
    except EncodingError as e:
        raise VerificationError(f"malformed entry: {e.message}") from e


class ChainVerifier:
    """Verify a chain incrementally.

    Args:
        validator_key: the public key of the bank that must have signed every entry.
        validator_name: that bank's name, which fixes the chain's address and so which assets
            it may issue.
        chain_id: the chain expected, if known (the genesis must hash to it).
    """

    def __init__(self, validator_key: str, validator_name: str, chain_id: str | None = None):
        self.validator_key = validator_key
        self.validator_name = validator_name
        self.chain_id = chain_id
        self.state: ChainState | None = None
        # Digests of the debits credited so far: the one thing a verifier keeps that grows
        # with the chain, 32 bytes each (a credit may not come twice for one debit).
        self._credited: set[bytes] = set()
        self._forwarded: set[bytes] = set()  # routed holds a correspondent handed on
        # Digests of the take intents our offers' fills and settles answered: one take is
        # answered once (a take answered twice would pay the maker twice for one payment).
        self._taken: set[bytes] = set()
        # Digests of the plan consents our plan holds used: a consent holds once.
        self._consented: set[bytes] = set()
        self._deferred: DeferredSignatures | None = None

    @contextmanager
    def collecting_signatures(self) -> Iterator[None]:
        """Collect signature checks instead of making them, until the block ends; the caller
        takes them (:meth:`take_signatures`) and checks every one before trusting the entries
        fed meanwhile. After a failure the verifier must not be used again."""
        self._deferred = DeferredSignatures()
        try:
            yield
        finally:
            self._deferred = None

    def take_signatures(self) -> DeferredSignatures:
        """The signature checks collected since the last call."""
        assert self._deferred is not None, "take_signatures outside collecting_signatures"
        taken, self._deferred = self._deferred, DeferredSignatures()
        return taken

    def _signed(self, key: str, message_digest: bytes, sig: str, failure: str, *args: Any
                ) -> None:
        """Check one signature now, or collect it; ``failure.format(*args)`` is the error
        if it fails."""
        if self._deferred is not None:
            self._deferred.signatures.append((key, message_digest, sig))
            self._deferred.failures.append((failure, args))
            return
        try:
            verify_digest(key, message_digest, sig)
        except SignatureError as e:
            raise VerificationError(failure.format(*args)) from e

    @property
    def height(self) -> int:
        """Height of the last verified entry, -1 before the genesis."""
        return -1 if self.state is None else self.state.height

    def feed(self, raw: SignedEntry | dict[str, Any] | bytes) -> SignedEntry:
        """Verify the next entry; return it parsed.

        Raises:
            VerificationError: naming the height and the failed step.
        """
        entry = _as_entry(raw)
        h = self.height + 1
        # 1. the validator's signature, by this chain's validator.
        if entry.validator != self.validator_key:
            raise VerificationError(f"entry {h} is signed by {entry.validator}, not by the "
                                    f"chain's validator {self.validator_key}")
        self._signed(entry.validator, entry.digest, entry.sig,
                     "entry {}: validator signature does not verify", h)
        # 2. the link to the entry before.
        if entry.height != h:
            raise VerificationError(f"entry height {entry.height} must be {h}")
        if self.state is None:
            self._genesis(entry)
            return entry
        if entry.chain != self.state.chain:
            raise VerificationError(f"entry {h} names chain {entry.chain}, not {self.state.chain}")
        if entry.prev != self.state.head:
            raise VerificationError(f"entry {h} prev {entry.prev} must be {self.state.head}")
        # 3. the owner's intent.
        self._check_intent(entry)
        # 4. and 5. evidence and effects.
        self._check_effects(entry)
        try:
            self.state = self.state.advance(entry)
        except VerificationError as e:
            raise VerificationError(f"balance rule broken: {e.message}") from e
        return entry

    def _genesis(self, entry: SignedEntry) -> None:
        if entry.kind != "genesis" or entry.chain is not None or entry.prev != GENESIS_PREV:
            raise VerificationError("entry 0 must be a genesis with chain null and prev zeros")
        if self.chain_id is not None and entry.id != self.chain_id:
            raise VerificationError(f"genesis id {entry.id} is not the chain id {self.chain_id}")
        intent = entry.intent
        if intent is None or not isinstance(intent.body, RegisterBody) or intent.seq != 0:
            raise VerificationError("the genesis must carry a register intent with seq 0")
        self._signed(intent.body.owner, intent.digest, intent.sig,
                     "the register intent's signature does not verify")
        # None: a chain opened before registrations named their bank (see RegisterBody)
        if intent.body.bank not in (None, self.validator_name):
            raise VerificationError(f"the register intent opens the chain at "
                                    f"{intent.body.bank}, not at {self.validator_name}")
        if entry.effects or entry.evidence:
            raise VerificationError("the genesis has no effects and no evidence")
        self.state = ChainState.genesis(entry, self.validator_name)

    def _check_intent(self, entry: SignedEntry) -> None:
        assert self.state is not None
        h = entry.height
        intent = entry.intent
        if entry.kind == "recover":  # signed by the key it recovers the chain to, not ours
            recover = self._seq_zero_intent(entry, RecoverBody)
            assert isinstance(recover.body, RecoverBody)
            self._signed(recover.body.owner, recover.digest, recover.sig,
                         "entry {}: the recover intent does not verify under the key {}", h,
                         recover.body.owner)
            return
        if entry.kind == "plan":
            self._check_consent(entry)
            return
        if entry.kind not in _OWNER_KINDS:
            if intent is not None:
                raise VerificationError(f"entry {h} ({entry.kind}) must not carry an intent")
            return
        if intent is None or intent.type != entry.kind:
            raise VerificationError(f"entry {h} ({entry.kind}) needs the owner's "
                                    f"{entry.kind} intent")
        self._signed(self.state.owner, intent.digest, intent.sig,
                     "entry {}: the intent does not verify under the owner key {}", h,
                     self.state.owner)
        if intent.chain != self.state.chain:
            raise VerificationError(f"entry {h}: the intent names chain {intent.chain}")
        if intent.seq != self.state.seq + 1:
            raise VerificationError(f"entry {h}: intent seq {intent.seq} must be "
                                    f"{self.state.seq + 1}")

    def _seq_zero_intent(self, entry: SignedEntry, body: type[Any]) -> SignedIntent:
        """The intent of an entry that is signed apart from the chain's seq (a recover's, a
        plan's consent): its body of type ``body``, for this chain, with seq 0."""
        assert self.state is not None
        intent = entry.intent
        if intent is None or not isinstance(intent.body, body) or \
                intent.chain != self.state.chain or intent.seq != 0:
            raise VerificationError(f"entry {entry.height} ({entry.kind}) needs a "
                                    f"{entry.kind} intent for this chain with seq 0")
        return intent

    def _check_consent(self, entry: SignedEntry) -> None:
        """A plan's hold carries its owner's consent to it (docs/protocol.md §14): a plan
        intent for this chain with seq 0 (signed when the plan was, before its turn; it moves
        no seq), under the chain's current owner key, used by no earlier hold."""
        assert self.state is not None
        h, intent = entry.height, self._seq_zero_intent(entry, PlanBody)
        self._signed(self.state.owner, intent.digest, intent.sig,
                     "entry {}: the plan intent does not verify under the owner key {}", h,
                     self.state.owner)
        if intent.digest in self._consented:
            raise VerificationError(f"entry {h}: the consent {intent.id} held already")
        self._consented.add(intent.digest)

    def _check_effects(self, entry: SignedEntry) -> None:
        assert self.state is not None
        h = entry.height
        body = entry.intent.body if entry.intent is not None else None
        expected: tuple[Effect, ...]
        if entry.kind == "credit":
            expected = entry_effects("credit", self._credited_body(entry), self.validator_name)
        elif entry.kind == "claim":
            expected = entry_effects("claim", self._claimed_body(entry), self.validator_name)
        elif entry.kind == "recovered":
            self._check_own_evidence(entry)
            expected = ()
        elif entry.kind in _CLOSING_KINDS or entry.kind == "fill":
            self._check_closing_evidence(entry)
            return  # ChainState.advance checks them against the hold they close or fill
        else:
            if isinstance(body, PaymentBody) and body.route is not None and \
                    body.route.forward is not None:  # a correspondent's hold (docs/adr/0015)
                self._check_forwarded(entry)
            elif entry.evidence:
                raise VerificationError(f"entry {h} ({entry.kind}) must carry no evidence")
            expected = entry_effects(entry.kind, body, self.validator_name)
            # an issue or redeem here (a debit: no hold for a peer) by whom it may be made
            if isinstance(body, PaymentBody | RedeemBody) and expected[0].balance < 0:
                if entry.kind == "issue" and not self.state.issues(str(body.asset)):
                    raise VerificationError(f"entry {h}: {self.state.address} issues "
                                            f"{body.asset}, which it is not the issuer of")
                if entry.kind == "redeem" and self.state.issues(str(body.asset)):
                    raise VerificationError(f"entry {h}: an issuer redeems its own asset")
        if entry.effects != expected:
            raise VerificationError(f"entry {h}: effects {[e.to_dict() for e in entry.effects]}"
                                    f" must be {[e.to_dict() for e in expected]}")

    def _check_closing_evidence(self, entry: SignedEntry) -> None:
        assert self.state is not None
        h = entry.height
        if entry.kind == "cancel":
            if entry.evidence:
                raise VerificationError(f"entry {h} (cancel) must carry no evidence")
            return
        if len(entry.evidence) != 1:
            raise VerificationError(f"entry {h} ({entry.kind}) carries exactly one signed entry")
        try:
            other = entry.evidence_entry(0)
            signed = [other] + [other.evidence_entry(i) for i in
                                range(len(other.evidence)
                                      if entry.kind in _PEER_EVIDENCE_KINDS else 0)]
        except EncodingError as e:
            raise VerificationError(f"entry {h}: the evidence does not verify: {e}") from e
        for item in signed:
            self._signed(item.validator, item.digest, item.sig,
                         "entry {}: the evidence does not verify: the signature of {} {.id} by "
                         "{}", h, item.kind, item, item.validator)
        if entry.kind in _PEER_EVIDENCE_KINDS and other.kind == "take" and \
                other.intent is not None:
            if other.intent.digest in self._taken:
                raise VerificationError(f"entry {h}: take {other.intent.id} was answered "
                                        "already")
            self._taken.add(other.intent.digest)
        if entry.kind == "release" and (other.validator != self.validator_key or
                                        other.chain != self.state.chain):
            raise VerificationError(f"entry {h}: a release carries an entry of this chain")

    def _check_own_evidence(self, entry: SignedEntry) -> None:
        """A recovered entry carries the recover entry of this chain it completes (its id is
        checked against the pending one by ChainState.advance)."""
        assert self.state is not None
        h = entry.height
        try:
            if len(entry.evidence) != 1:
                raise EncodingError(f"it carries {len(entry.evidence)} entries")
            asked = entry.evidence_entry(0)
        except EncodingError as e:
            raise VerificationError(f"entry {h}: a recovered entry carries its recover entry: "
                                    f"{e.message}") from e
        if asked.validator != self.validator_key or asked.chain != self.state.chain or \
                asked.kind != "recover":
            raise VerificationError(f"entry {h}: the evidence is not a recover entry of this "
                                    "chain")
        self._signed(asked.validator, asked.digest, asked.sig,
                     "entry {}: the evidence does not verify: the signature of {.id}", h, asked)

    def _credited_body(self, entry: SignedEntry) -> PaymentBody | RedeemBody | PlanBody:
        """The body of the debit a credit carries, checked to be one this chain may be
        credited with (once)."""
        assert self.state is not None
        h = entry.height
        if len(entry.evidence) == 2:
            return self._route_credited_body(entry)
        if len(entry.evidence) != 1:
            raise VerificationError(f"entry {h}: a credit carries exactly one signed debit")
        try:
            debit = entry.evidence_entry(0)
        except EncodingError as e:
            raise VerificationError(f"entry {h}: the evidence does not verify: {e}") from e
        self._signed(debit.validator, debit.digest, debit.sig,
                     "entry {}: the evidence does not verify: the signature of the debit {.id} "
                     "by {}", h, debit, debit.validator)
        body = debit.intent.body if debit.intent is not None else None
        if isinstance(body, PaymentBody) and debit.kind in ("payment", "issue"):
            if body.route is not None:  # each hop against the payer's route (attack 13)
                check_nested(debit)
            if body.to != self.state.chain:
                raise VerificationError(f"entry {h}: the evidence pays chain {body.to}")
            if debit.validator != self.validator_key and body.to_validator != self.validator_name:
                raise VerificationError(f"entry {h}: the evidence pays {body.to_validator}, "
                                        f"not {self.validator_name}")
        elif isinstance(body, PlanBody) and debit.kind == "plan":
            if body.to != self.state.address:  # the address names the bank too
                raise VerificationError(f"entry {h}: the plan's hold pays {body.to}")
        elif isinstance(body, RedeemBody) and debit.kind == "redeem":
            if not self.state.issues(str(body.asset)):
                raise VerificationError(f"entry {h}: the evidence redeems {body.asset} to "
                                        "another issuer")
        else:
            raise VerificationError(f"entry {h}: the evidence is not a payment, issue, redeem "
                                    "or plan hold")
        if debit.digest in self._credited:
            raise VerificationError(f"entry {h}: debit {debit.id} was already credited")
        self._credited.add(debit.digest)
        return body


    def _check_forwarded(self, entry: SignedEntry) -> None:
        """A correspondent's hold, on its bank's own chain, carries the routed hold it hands
        on, signed, and hands each on once (docs/adr/0015-correspondent-routes.md)."""
        assert self.state is not None
        upstream = forwarded(entry)
        check_nested(entry)
        if self.state.address != self.validator_name:
            raise VerificationError(f"entry {entry.height}: only a bank's own chain forwards")
        self._signed(upstream.validator, upstream.digest, upstream.sig,
                     "entry {}: the hold it forwards does not verify", entry.height)
        if upstream.digest in self._forwarded:
            raise VerificationError(f"entry {entry.height}: hold {upstream.id} was forwarded "
                                    "already")
        self._forwarded.add(upstream.digest)

    def _route_credited_body(self, entry: SignedEntry) -> PaymentBody:
        """A correspondent's credit: the routed hold that paid it (to this bank, along its
        route), once, and the next bank's credit of this chain's hold forwarding it."""
        assert self.state is not None
        h = entry.height
        upstream, onward, ours = route_credit_parts(entry)
        body = routed_body(upstream)
        if body is None or upstream.kind != "payment" or \
                self.state.address != self.validator_name or \
                next_hop(body) != self.validator_name:
            raise VerificationError(f"entry {h}: the hold is not routed through this bank")
        for item in (upstream, onward, ours):
            self._signed(item.validator, item.digest, item.sig,
                         "entry {}: the evidence does not verify: the signature of {.id}", h,
                         item)
        if upstream.digest in self._credited:
            raise VerificationError(f"entry {h}: debit {upstream.id} was already credited")
        self._credited.add(upstream.digest)
        return body

    def _claimed_body(self, entry: SignedEntry) -> LockBody:
        """The body of the lock a claim carries, checked to be one this chain may claim (once,
        with the preimage of its hash, before it expired: tchain.htlc.claim_fits_lock)."""
        assert self.state is not None
        h = entry.height
        try:
            lock = claimed_lock(entry)
            body = claim_fits_lock(entry, lock)
        except VerificationError as e:
            raise VerificationError(f"entry {h} (claim): {e.message}") from e
        self._signed(lock.validator, lock.digest, lock.sig,
                     "entry {}: the evidence does not verify: the signature of the lock {.id} "
                     "by {}", h, lock, lock.validator)
        if lock.validator != self.validator_key and body.to_validator != self.validator_name:
            raise VerificationError(f"entry {h}: the lock is for {body.to_validator}, not "
                                    f"{self.validator_name}")
        if lock.digest in self._credited:  # one claim per lock, as one credit per debit
            raise VerificationError(f"entry {h}: lock {lock.id} was already claimed")
        self._credited.add(lock.digest)
        return body


def verify_chain(entries: Any, validator_key: str, validator_name: str,
                 chain_id: str | None = None) -> ChainState:
    """Verify a whole chain from an iterable of entries; return its final state."""
    verifier = ChainVerifier(validator_key, validator_name, chain_id)
    for entry in entries:
        verifier.feed(entry)
    if verifier.state is None:
        raise VerificationError("the chain is empty: no genesis")
    return verifier.state
