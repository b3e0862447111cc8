"""The co-signing engine: the rules applied to the store.

It loads the states an intent touches, asks :mod:`tchain.rules` for a decision, and writes the
entries and new states in the same write transaction. Signed entries are returned only after
that transaction committed (the store's ``write`` returns after the durable commit), so no
signature ever leaves for an entry that could be lost.

:meth:`Ledger.submit_many` decides many intents in one write transaction and one fsync; each is
accepted or refused on its own, and a refused one writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tchain.books import Position
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.errors import (
    ConflictError,
    EncodingError,
    NotFoundError,
    SignatureError,
    TChainError,
    UnknownAssetError,
    UnknownChainError,
)
from tchain.flow_states import LockRecord, OfferRecord
from tchain.intents import sign_intent
from tchain.keys import check_ahead
from tchain.model import (
    CancelRecoveryBody,
    ClaimBody,
    LockBody,
    OfferBody,
    PaymentBody,
    RecoverBody,
    RedeemBody,
    RotateKeyBody,
    SignedEntry,
    SignedIntent,
    TakeBody,
)
from tchain.route_checks import check_first_pin
from tchain.rules import (
    BankIdentity,
    Outcome,
    check_offer_open,
    check_recover_intent,
    complete_recovery,
    decide,
    make_genesis,
    recover,
)
from tchain.state import ChainState, holds_read
from tchain.values import UAI
from validator.flows import peer_names, start_flows
from validator.store import Reader, Store, Writer

__all__ = ["Ledger", "Submitted"]

BANK_CHAIN = "bank_chain"


@dataclass(frozen=True, slots=True)
class _Plan:
    """An intent decided outside the write transaction, and the chain states it read.

    ``result`` None: decide it inside the transaction. ``intent`` None: refused before it
    was parsed. ``written``: the new states' bytes, in the order of the outcome's states.
    """

    intent: SignedIntent | None
    reads: tuple[tuple[str, bytes | None], ...]
    result: Submitted | None
    written: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Submitted:
    """The answer to one intent of a batch: its entries, or the error that refused it."""

    outcome: Outcome | None
    error: TChainError | None
    messages: tuple[str, ...] = ()


class Ledger:
    """The bank's ledger of all its customers' chains.

    Args:
        store: the LMDB store.
        validator: the bank's key and name.
        clock: the time source in ms (tests pass a fixed one).
        settle_deadline_ms: how long a peer has to do its side of a cross-bank flow.
        handoff_ms: how long the outbox sender leaves the messages an intent queues to the
            caller that submitted it, when that caller tries them at once itself (the HTTP
            workers do): both sending them is harmless but doubles the work on both banks.
            If the caller dies first, the sender takes them over after it.
    """

    def __init__(self, store: Store, bank: BankIdentity, *,
                 clock: Callable[[], int] = now_ms, settle_deadline_ms: int = 30_000,
                 handoff_ms: int = 0) -> None:
        self.store = store
        self.bank = bank
        self.clock = clock
        self.settle_deadline_ms = settle_deadline_ms
        self.handoff_ms = handoff_ms

    # --- registering chains ---------------------------------------------------------------

    def register(self, doc: Any, *, admit: Callable[[], None] | None = None) -> SignedEntry:
        """Open a chain from ``{"intent": <register>, "sig", "kyc_record"}``; return its genesis.

        ``admit`` is asked last, once every check has passed, and may refuse (the bank's budget
        for registrations): so a refused registration spends none of it.

        Raises:
            TChainError: ``conflict`` (409) when the name or the key is taken, or the error of
                the failed check.
        """
        intent, kyc_record = _intent_with_kyc(doc, "a registration")
        genesis, state = make_genesis(self.bank, intent, kyc_record, self.clock())

        def work(w: Writer) -> SignedEntry:
            if w.chain_by_name(state.name) is not None:
                raise ConflictError(f"name {state.name!r} is taken at {self.bank.name}")
            if w.chain_by_owner(state.owner) is not None:
                raise ConflictError(f"key {state.owner} already owns a chain at "
                                    f"{self.bank.name}")
            if admit is not None:
                admit()
            w.put_name(state.name, state.chain)
            w.put_owner(state.owner, state.chain)
            if kyc_record is not None:
                w.put_kyc(state.chain, canonical(kyc_record))
            w.append(genesis, state)
            if state.address == self.bank.name:
                w.put_meta(BANK_CHAIN, state.chain)
            return genesis

        return self.store.write(work)

    # --- intents ----------------------------------------------------------------------------

    def submit(self, doc: Any) -> Outcome:
        """Decide one signed intent and commit its entries; raise its error if refused."""
        return self.submit_one(doc).outcome  # type: ignore[return-value]

    def submit_one(self, doc: Any, *,
                   read: Callable[[Any], SignedIntent] = SignedIntent.from_dict) -> Submitted:
        """Decide one signed intent; raise its error if refused, else return the result with
        the ids of the peer messages it queued."""
        [result] = self.submit_many([doc], read=read)
        if result.error is not None:
            raise result.error
        assert result.outcome is not None
        return result

    def submit_many(self, docs: Sequence[Any], *,
                    read: Callable[[Any], SignedIntent] = SignedIntent.from_dict
                    ) -> list[Submitted]:
        """Decide many signed intents and commit them in one write transaction and one fsync.

        Intents are decided in order, each seeing the ones before it; each is accepted or
        refused on its own and a refused one writes nothing.

        The costly part, verifying the owners' signatures and signing the entries, runs before
        the write transaction, against the chains' states as last committed (a plan). The
        transaction then only checks that every chain a plan read is unchanged, byte for byte,
        and writes; a plan whose chains changed meanwhile (another worker wrote them) is
        decided again inside the transaction. Intents that reach beyond the bank (offers,
        takes, cross-bank payments) or rotate a key are decided inside it, with their
        signatures already verified.

        ``read``: SignedIntent.trusted for documents that came out of :func:`parse`.
        """
        parsed: list[SignedIntent | TChainError] = []
        for doc in docs:
            try:
                parsed.append(read(doc))
            except TChainError as e:
                parsed.append(e)
        now = self.clock()
        plans = self._plan(parsed, now)

        def work(w: Writer) -> list[Submitted]:
            return [self._commit_plan(w, plan, now) for plan in plans]

        return self.store.write(work)

    def _plan(self, parsed: Sequence[SignedIntent | TChainError], now: int) -> list[_Plan]:
        """Decide and sign outside the write transaction (see :meth:`submit_many`)."""
        with self.store.read() as r:
            others = [self._local_counterparty(r, p) if isinstance(p, SignedIntent) else None
                      for p in parsed]
            chains = {p.chain for p in parsed if isinstance(p, SignedIntent) and p.chain}
            states = {chain: r.state_bytes(chain) for chain in chains | {o for o in others if o}}
        # chain id -> its state after the plans before it (None: decided in the transaction)
        preloaded: dict[str, tuple[ChainState | None, bytes | None] | None] = {
            chain: (None if raw is None else ChainState.from_bytes(raw), raw)
            for chain, raw in states.items()}
        # The owners' signatures first, all at once (on every core): each intent then finds
        # its own verified under its chain's owner, or is checked again and refused.
        check_ahead([check for p in parsed if isinstance(p, SignedIntent) and p.chain
                     and (read := preloaded.get(p.chain)) is not None
                     and (state := read[0]) is not None
                     for check in p.verify_ahead(state.owner)])
        return [_Plan(None, (), Submitted(None, p)) if isinstance(p, TChainError)
                else self._plan_one(p, other, preloaded, now)
                for p, other in zip(parsed, others, strict=True)]

    def _local_counterparty(self, r: Reader, intent: SignedIntent) -> str | None:
        """The chain at this bank an intra-bank transfer credits (None for other intents)."""
        body = intent.body
        if isinstance(body, PaymentBody) and body.to_validator in (None, self.bank.name):
            return body.to
        if isinstance(body, RedeemBody):
            return self.chain_of_address(r, body.asset.issuer)
        return None

    def _plan_one(self, intent: SignedIntent, other_id: str | None,
                  preloaded: dict[str, tuple[ChainState | None, bytes | None] | None], now: int
                  ) -> _Plan:
        mine = None if intent.chain is None else preloaded.get(intent.chain)
        chain, raw = (None, None) if mine is None else mine
        if intent.chain is None or chain is None:
            # a register, a chain decided in the transaction, or one not registered here
            return _Plan(intent, (), None)
        if other_id is None or holds_read(intent):
            # beyond the bank, a key rotation, an unknown issuer, or a decision that reads a
            # hold (states are decoded here without theirs): decided inside the transaction,
            # its holds loaded there; its signature was checked preloaded (_plan)
            preloaded[intent.chain] = None
            return _Plan(intent, (), None)
        other = preloaded.get(other_id)
        if other is None:
            preloaded[intent.chain] = None
            return _Plan(intent, (), None)
        reads = ((intent.chain, raw), (other_id, other[1]))
        try:
            outcome = decide(self.bank, intent, chain, other[0], now)
        except TChainError as e:
            return _Plan(intent, reads, Submitted(None, e))
        written = tuple(state.to_bytes() for state in outcome.states)
        for state, state_raw in zip(outcome.states, written, strict=True):
            preloaded[state.chain] = (state, state_raw)
        return _Plan(intent, reads, Submitted(outcome, None), written)

    def _commit_plan(self, w: Writer, plan: _Plan, now: int) -> Submitted:
        """Inside the write transaction: write a plan whose chains are as it read them."""
        if plan.intent is None:
            assert plan.result is not None
            return plan.result
        if plan.result is None or any(w.state_bytes(chain) != raw for chain, raw in plan.reads):
            return self._apply(w, plan.intent, now)
        outcome = plan.result.outcome
        if outcome is None:
            return plan.result
        for entry, state, raw in zip(outcome.entries, outcome.states, plan.written, strict=True):
            w.append(entry, state, raw)
        return plan.result

    def _apply(self, w: Writer, intent: SignedIntent, now: int) -> Submitted:
        try:
            if intent.type == "register":
                raise EncodingError("register intents go to POST /v1/chains")
            assert intent.chain is not None
            closes = holds_read(intent)  # the one hold it may close, loaded with the states
            chain = w.state(intent.chain, closes)
            if chain is None:
                raise UnknownChainError(f"chain {intent.chain} is not registered at "
                                        f"{self.bank.name}")
            outcome = decide(self.bank, intent, chain,
                             self._counterparty(w, intent, closes), now,
                             peers=self._peers_for(w, intent), offer=self._offer_for(w, intent),
                             position=self._position_for(w, intent),
                             remaining=self._remaining_for(w, intent),
                             lock=self._lock_for(w, intent),
                             ranking=self._ranking_for(w, intent))
            self._check_new_owner(w, intent)
        except TChainError as e:
            return Submitted(None, e)
        self._write(w, outcome, intent, chain)
        messages = start_flows(self.bank.key, self.bank.name, w, intent,
                               outcome.entries, outcome.states[0], now,
                               self.settle_deadline_ms, first_try=now + self.handoff_ms)
        return Submitted(outcome, None, tuple(messages))

    def _peers_for(self, r: Reader, intent: SignedIntent) -> frozenset[str]:
        """The pinned peers, read only for an intent that reaches beyond this bank (the
        co-signing path of an intra-bank payment does not touch the peers database)."""
        body = intent.body
        crosses = isinstance(body, TakeBody | OfferBody) or (
            isinstance(body, PaymentBody | LockBody) and
            body.to_validator not in (None, self.bank.name))
        if isinstance(body, PaymentBody) and body.route is not None and body.route.via:
            pinned = r.peer(body.route.via[0])  # the payer signed its keys (docs/adr/0015)
            check_first_pin(body, None if pinned is None else str(pinned["key"]))
        return peer_names(r) if crosses else frozenset()

    def _offer_for(self, r: Reader, intent: SignedIntent) -> SignedEntry | None:
        """For a take: the offer it names, as spread by its bank (or made here) and checked
        against that bank's key."""
        body = intent.body
        if not isinstance(body, TakeBody):
            return None
        record = r.record("offers", body.offer)
        peer = {"key": self.bank.public_key} if body.validator == self.bank.name \
            else r.peer(body.validator)
        if record is None or peer is None or record["validator"] != body.validator:
            return None
        check_offer_open(body.offer, OfferRecord.from_dict(record))
        offer = SignedEntry.from_dict(record["offer"])
        try:
            offer.verify(peer["key"])
        except SignatureError:
            return None
        return offer

    @staticmethod
    def _remaining_for(r: Reader, intent: SignedIntent) -> int | None:
        """For a take: what its offer's bank last told us remains of it (None: all)."""
        body = intent.body
        if not isinstance(body, TakeBody):
            return None
        record = r.record("offers", body.offer)
        return None if record is None else OfferRecord.from_dict(record).remaining

    @staticmethod
    def _ranking_for(r: Reader, intent: SignedIntent) -> bool:
        """For a take: whether takes of its offer wait for its window (validator/bids.py)."""
        body = intent.body
        record = r.record("offers", body.offer) if isinstance(body, TakeBody) else None
        return record is not None and bool(OfferRecord.from_dict(record).bids)

    @staticmethod
    def _lock_for(r: Reader, intent: SignedIntent) -> LockRecord | None:
        """For a claim: the lock it names as kept here (made here, or a peer's that its bank
        sent us, checked against its pinned key then), with what was decided on it."""
        body = intent.body
        if not isinstance(body, ClaimBody):
            return None
        record = r.record("locks", body.lock)
        return None if record is None else LockRecord.from_dict(record)

    def _position_for(self, r: Reader, intent: SignedIntent) -> Position | None:
        """For a take: our position with the offer's bank in the asset the taker gets; for a
        claim of a peer's lock, with the lock's bank in the asset it locks."""
        body = intent.body
        if isinstance(body, ClaimBody):
            lock = self._lock_for(r, intent)
            if lock is None or lock.lock is None or lock.validator == self.bank.name:
                return None
            return r.position(lock.validator, lock.lock["entry"]["effects"][0]["asset"])
        if not isinstance(body, TakeBody):
            return None
        return r.position(body.validator, str(body.buy.asset))

    def _counterparty(self, r: Reader, intent: SignedIntent, closes: frozenset[str]
                      ) -> ChainState | None:
        """The other chain at this bank an intent moves value to, if it is here, with the
        holds in ``closes`` loaded."""
        body = intent.body
        if isinstance(body, PaymentBody | LockBody):
            if body.to_validator not in (None, self.bank.name):
                return None
            return r.state(body.to, closes)
        if isinstance(body, ClaimBody):  # a lock made here: its payer's chain, settled at once
            lock = self._lock_for(r, intent)
            if lock is not None and lock.lock is not None and lock.validator == self.bank.name:
                return r.state(lock.lock["entry"]["chain"], closes)
        if isinstance(body, RedeemBody):
            issuer_chain = self.chain_of_address(r, body.asset.issuer)
            return None if issuer_chain is None else r.state(issuer_chain, closes)
        if isinstance(body, TakeBody) and body.validator == self.bank.name:
            # the maker of an offer made here: the exchange settles both chains at once
            record = r.record("offers", body.offer)
            if record is not None and record["validator"] == self.bank.name:
                return r.state(SignedEntry.from_dict(record["offer"]).chain_id, closes)
        return None

    def _check_new_owner(self, r: Reader, intent: SignedIntent) -> None:
        if isinstance(intent.body, RotateKeyBody) and \
                r.chain_by_owner(intent.body.owner) is not None:
            raise ConflictError(f"key {intent.body.owner} already owns a chain here")

    # --- recovering a lost key --------------------------------------------------------------

    def recover(self, chain_id: str, doc: Any, *, admit: Callable[[], None] | None = None
                ) -> tuple[SignedEntry, ChainState]:
        """Start the recovery of a chain's key from ``{"intent": <recover>, "sig",
        "kyc_record"}``; return the recover entry and the chain's state after it (its
        ``recovery`` says when it takes effect). See tchain.rules.recover.

        Raises:
            TChainError: the error of the failed check (nothing written).
        """
        intent, kyc = _intent_with_kyc(doc, "a recovery")
        body = intent.body
        if not isinstance(body, RecoverBody) or intent.chain != chain_id:
            raise EncodingError(f"POST /v1/chains/{chain_id}/recovery takes a recover intent "
                                "naming that chain")
        shown = None if kyc is None else canonical(kyc)
        now = self.clock()
        check_recover_intent(intent, chain_id, now)

        def work(w: Writer) -> tuple[SignedEntry, ChainState]:
            chain = w.state(chain_id)
            if chain is None:
                raise UnknownChainError(f"chain {chain_id} is not registered at "
                                        f"{self.bank.name}")
            if admit is not None:  # an attempt at this chain's record: it costs
                admit()
            if w.chain_by_owner(body.owner) is not None:
                raise ConflictError(f"key {body.owner} already owns a chain at "
                                    f"{self.bank.name}")
            outcome = recover(self.bank, intent, chain, shown, w.kyc(chain_id), now)
            [entry], [after] = outcome.entries, outcome.states
            assert after.recovery is not None
            w.append(entry, after)
            w.put_owner(body.owner, chain_id)  # taken meanwhile: nobody registers it
            w.set_due("recoveries", chain_id, after.recovery.at)
            return entry, after

        return self.store.write(work)

    def complete_recoveries(self, w: Writer, now: int) -> list[str]:
        """Inside a write (the clock's tick): give each chain whose recovery has waited its
        delay uncancelled to its new key; a line for each."""
        done = []
        for chain_id, at in w.due("recoveries", now):
            w.clear_due("recoveries", chain_id, at)
            chain = w.state(chain_id)
            if chain is None or chain.recovery is None or chain.recovery.at > now:
                continue  # cancelled meanwhile
            raw = w.entry(chain_id, chain.recovery.height)
            assert raw is not None, f"the recover entry of chain {chain_id} is not stored"
            outcome = complete_recovery(self.bank, chain, SignedEntry.from_bytes(raw), now)
            [entry], [after] = outcome.entries, outcome.states
            w.append(entry, after)
            w.delete_owner(chain.owner)
            done.append(f"chain {chain_id} recovered: key {after.owner} owns it now")
        return done

    def _write(self, w: Writer, outcome: Outcome, intent: SignedIntent,
               before: ChainState) -> None:
        # a chain's state is put once, after its last entry: an exchange here writes two
        # entries on the taker's chain, and its states' holds are changes since the read
        last = {state.chain: i for i, state in enumerate(outcome.states)}
        for i, (entry, state) in enumerate(zip(outcome.entries, outcome.states, strict=True)):
            w.append(entry, state if last[state.chain] == i else None)
        if isinstance(intent.body, RotateKeyBody):
            w.delete_owner(before.owner)
            w.put_owner(intent.body.owner, before.chain)
        if isinstance(intent.body, CancelRecoveryBody) and before.recovery is not None:
            w.delete_owner(before.recovery.owner)  # the key it had kept for the recovery

    # --- the bank's own chain -------------------------------------------------------------

    def deposit(self, to_address: str, asset: str, amount: int, memo: str | None = None
                ) -> Outcome:
        """The bank issues its IOU to a customer: an ``issue`` from the bank's own chain.

        The bank signs the intent as its chain's owner, inside the write transaction, so
        concurrent deposits never race for the bank chain's seq.
        """
        uai = UAI.parse(asset)
        if uai.issuer != self.bank.name:
            raise UnknownAssetError(
                f"a deposit pays the bank's own IOU ({self.bank.name}:CODE), "
                f"got {asset}")
        now = self.clock()

        def work(w: Writer) -> Outcome:
            bank = self._bank_state(w)
            to = self.chain_of_address(w, to_address)
            if to is None:
                raise UnknownChainError(f"{to_address} is not registered at {self.bank.name}")
            body: dict[str, Any] = {"to": to, "to_validator": self.bank.name,
                                    "asset": asset, "amount": str(amount)}
            if memo:
                body["memo"] = memo
            intent = SignedIntent.from_dict(sign_intent(
                self.bank.key, "issue", bank.chain, bank.seq + 1, now, body))
            outcome = decide(self.bank, intent, bank, w.state(to), now)
            self._write(w, outcome, intent, bank)
            return outcome

        return self.store.write(work)

    def _bank_state(self, r: Reader) -> ChainState:
        chain = r.meta(BANK_CHAIN)
        state = None if chain is None else r.state(chain)
        if state is None:
            raise NotFoundError("the bank's own chain does not exist; run validator init")
        return state

    # --- reading ----------------------------------------------------------------------------

    def chain_of_address(self, r: Reader, address: str) -> str | None:
        """The chain id of ``alice*<this bank>`` or of the bank's own name, if here."""
        name, _, bank = address.rpartition("*")
        if not name:
            return r.meta(BANK_CHAIN) if address == self.bank.name else None
        if bank != self.bank.name:
            return None
        return r.chain_by_name(name)

    def state(self, chain_id: str) -> ChainState:
        """The current state of a chain with every hold open on it (NotFoundError if it is
        not here). Serving a chain needs no holds: the API reads states inside its own
        transaction (Reader.state), at a cost that does not grow with them."""
        with self.store.read() as r:
            state = r.state_with_holds(chain_id)
        if state is None:
            raise UnknownChainError(f"chain {chain_id} is not registered at {self.bank.name}")
        return state

    def bank_chain(self) -> str | None:
        with self.store.read() as r:
            return r.meta(BANK_CHAIN)


def _intent_with_kyc(doc: Any, what: str) -> tuple[SignedIntent, Any]:
    """The signed intent and the KYC record (or None) of ``{intent, sig, kyc_record}``, the
    body of a registration and of a recovery.

    Raises:
        EncodingError: not that shape.
    """
    if not isinstance(doc, dict):
        raise EncodingError(f"{what} is a JSON object {{intent, sig, kyc_record}}")
    extra = doc.keys() - {"intent", "sig", "kyc_record"}
    if extra:
        raise EncodingError(f"{what} has unknown field(s) {', '.join(sorted(extra))}")
    intent = SignedIntent.from_dict({"intent": doc.get("intent"), "sig": doc.get("sig")})
    return intent, doc.get("kyc_record")

