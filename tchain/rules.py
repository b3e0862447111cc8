"""The rules: a chain state and a signed intent in, signed entries or a refusal out.

Pure: no clock, no store, no network. The caller passes the time, the states of the chains the
intent touches, and the validator's key; the rules return the entries to append and the states
after them, or raise a :class:`RuleError` (or :class:`SignatureError`) with the protocol code.

The checks run in this order for every intent (numbers repeated at each check below):
  1. the signature verifies under the chain's current owner key;
  2. ``seq`` is the chain's last seq + 1;
  3. ``time`` is within ``TIME_WINDOW_MS`` of the validator's clock;
  4. the type's own rules (recipient, asset, funds, limits, KYC);
then the entries are made, signed and checked against the balance rule (PROTOCOL.md §4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tchain.books import Position, check_crossing, check_incoming
from tchain.digest import sha256_hex
from tchain.encoding import canonical, parse
from tchain.errors import (
    BadRequestRuleError,
    BadSeqError,
    ConflictError,
    EncodingError,
    ExpiredError,
    ForbiddenError,
    InsufficientFundsError,
    KycRequiredError,
    LimitExceededError,
    NotFoundError,
    OfferClosedError,
    RouteRefusedError,
    SignatureError,
    StaleTimeError,
    UnknownAssetError,
    UnknownChainError,
    UnknownOfferError,
    UnknownValidatorError,
    VerificationError,
)
from tchain.flow_states import LockRecord, LockState, OfferRecord
from tchain.htlc import hash_of, lock_body, lock_terms_error
from tchain.keys import SigningKey
from tchain.model import (
    GENESIS_PREV,
    CancelBody,
    CancelRecoveryBody,
    ClaimBody,
    Effect,
    LockBody,
    OfferBody,
    PaymentBody,
    PlanBody,
    RecoverBody,
    RedeemBody,
    RegisterBody,
    RotateKeyBody,
    SignedEntry,
    SignedIntent,
    TakeBody,
)
from tchain.selection import DECIDING_MS, window_closes
from tchain.state import (
    DAY_MS,
    Balance,
    ChainState,
    Hold,
    available,
    check_take_terms,
    closing_effects,
    entry_effects,
    fill_effects,
    offer_hold,
    settled_by,
    taken_by,
)
from tchain.values import MAX_AMOUNT, UAI

__all__ = [
    "MAX_OFFER_MS",
    "RECOVERY_CODE_MIN",
    "TIME_WINDOW_MS",
    "BankIdentity",
    "Outcome",
    "check_offer_open",
    "check_recover_intent",
    "check_take",
    "complete_recovery",
    "credit_transfer",
    "decide",
    "fill_hold",
    "has_recovery_code",
    "hold_for_plan",
    "make_genesis",
    "next_entry",
    "offer_hold",
    "offer_terms_error",
    "recover",
    "release_hold",
    "settle_hold",
]

TIME_WINDOW_MS = 300_000
MAX_KYC_BYTES = 16_384  # a KYC record is a few fields: name, birth date, document numbers
MAX_OFFER_MS = 30 * 86_400_000  # an offer stays open at most 30 days


@dataclass(frozen=True, slots=True)
class BankIdentity:
    """Who signs: the bank's key and its name."""

    key: SigningKey
    name: str

    @property
    def public_key(self) -> str:
        return self.key.public_key


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an accepted intent does: entries to append (the owner's first) and the new states."""

    entries: tuple[SignedEntry, ...]
    states: tuple[ChainState, ...]


def _entry(bank: BankIdentity, state: ChainState, now: int, kind: str, intent: SignedIntent | None,
           effects: Sequence[Effect], evidence: list[SignedEntry]) -> SignedEntry:
    """The next entry of ``state``'s chain, signed by the validator; refused (before it is
    signed) if it would take a balance or a hold of the chain past what an amount can say."""
    for effect in effects:
        before = state.balances.get(effect.asset, Balance())
        if max(abs(before.balance + effect.balance), before.held + effect.held) > MAX_AMOUNT:
            raise LimitExceededError(
                f"the {kind} would take {state.address}'s {effect.asset} past "
                f"{MAX_AMOUNT}, the most an amount of 38 digits says", limit=str(MAX_AMOUNT))
    return SignedEntry.sign(bank.key, chain=state.chain, height=state.height + 1, prev=state.head,
                            time=now, kind=kind, intent=intent, effects=tuple(effects),
                            evidence=tuple(evidence))


next_entry = _entry  # for the core's other deciders (tchain.route): one way to sign an entry


def _check_time(intent: SignedIntent, now: int) -> None:
    if abs(intent.time - now) > TIME_WINDOW_MS:
        raise StaleTimeError(
            f"intent time {intent.time} is {abs(intent.time - now)} ms from the "
            f"validator's clock {now}; at most {TIME_WINDOW_MS} ms is accepted", validator_time=now)


def make_genesis(bank: BankIdentity, intent: SignedIntent, kyc_record: Any, now: int
                 ) -> tuple[SignedEntry, ChainState]:
    """Check a register intent and make the chain's signed genesis entry.

    Name and key uniqueness need the store; the ledger checks them.

    Raises:
        SignatureError, RuleError, EncodingError: naming the failed check.
    """
    if intent.type != "register" or not isinstance(intent.body, RegisterBody):
        raise EncodingError(f"POST /v1/chains takes a register intent, got {intent.type!r}")
    body = intent.body
    # The registration is for this bank. First, so that one signed for another bank and
    # replayed here is refused as that (bad_request) however old it is, at no signature check.
    if body.bank is None:
        raise BadRequestRuleError(
            f"a register intent names the bank it opens the chain at ({bank.name})")
    if body.bank != bank.name:
        raise BadRequestRuleError(
            f"this register intent opens a chain at {body.bank}, not at {bank.name}: "
            "a registration is refused at every bank but the one it names")
    # 1. the signature verifies under the key being registered (proof of possession).
    intent.verify(body.owner)
    # 2. seq is 0 for a genesis.
    if intent.seq != 0:
        raise BadSeqError(f"seq {intent.seq} must be 0 for register", expected=0)
    # 3. time.
    _check_time(intent, now)
    # 4. the KYC record matches the hash the owner signed; it never goes into the chain, and
    # it is kept: at most MAX_KYC_BYTES (found by the outside attacker: registrations with a
    # record of a megabyte each filled the disk at 62 MB a second)
    if body.kyc is None:
        if kyc_record is not None:
            raise EncodingError("kyc_record given but the intent's kyc hash is null")
    else:
        if not isinstance(kyc_record, dict):
            raise EncodingError("kyc_record (a JSON object) is required: the intent names "
                                "its hash")
        kept = canonical(kyc_record)
        if len(kept) > MAX_KYC_BYTES:
            raise EncodingError(f"kyc_record is {len(kept)} bytes in canonical form; at most "
                                f"{MAX_KYC_BYTES} are kept")
        got = sha256_hex(kept)
        if got != body.kyc:
            raise EncodingError(f"kyc_record hashes to {got}, the intent signed {body.kyc}")
        if "recovery_code" in kyc_record and not has_recovery_code(kyc_record):
            raise EncodingError(f"a recovery_code is at least {RECOVERY_CODE_MIN} characters "
                                "of base32 (A-Z, 2-7): 128 random bits, as wallets make it")
    if body.owner == bank.public_key and body.name != bank.name:
        raise ForbiddenError("the bank's key may only register the bank's own chain")
    signed = SignedEntry.sign(bank.key, chain=None, height=0, prev=GENESIS_PREV, time=now,
                              kind="genesis", intent=intent, effects=(), evidence=())
    return signed, ChainState.genesis(signed, bank.name)


def decide(bank: BankIdentity, intent: SignedIntent, chain: ChainState,
           counterparty: ChainState | None, now: int, *, peers: frozenset[str] = frozenset(),
           offer: SignedEntry | None = None, position: Position | None = None,
          remaining: int | None = None, lock: LockRecord | None = None,
          ranking: bool = False) -> Outcome:
    """Decide an intent on an existing chain.

    Args:
        bank: the bank that signs (its key and name).
        intent: the signed intent, shape already checked.
        chain: the state of the chain the intent names.
        counterparty: the state of the other chain at this bank the intent moves value to (the
            payee of a payment or issue, the issuer for a redeem), or None if there is none here.
        now: the validator's clock in ms.
        peers: the names of the banks this one trusts (a payment may go to their customers).
        offer: for a take, the signed offer entry it names, already checked to be signed by
            the pinned key of the bank the take names.
        position: for a take, our position with the offer's bank in the asset the taker
            gets (tchain.books): that bank may give us our own IOU only out of what it holds.
        remaining: for a take of a peer's offer, what its bank last told us is left of it
            (None: all of it, no fill heard of).
        ranking: for a take of an offer made here, whether takes that waited for its window
            still wait to be decided: it then waits too, and comes after them.
        lock: for a claim, the lock it names as this bank keeps it (made here, or a peer's
            checked against its pinned key), with the decision taken on it so far.

    ``counterparty`` is, for a take of an offer made here, the maker's chain; for a claim of
    a lock made here, the payer's chain.

    Raises:
        SignatureError, RuleError, NotFoundError, ForbiddenError, EncodingError.
    """
    if intent.chain != chain.chain:
        raise ValueError("decide() got the state of another chain")  # our bug, not theirs
    # 1. the owner's signature.
    try:
        intent.verify(chain.owner)
    except SignatureError as e:
        raise SignatureError(f"intent signature does not verify under the owner key "
                             f"{chain.owner} of chain {chain.chain}") from e
    if chain.recovery is not None and now >= chain.recovery.at:
        # the clock's tick writes the ``recovered`` entry soon; from its time on the old key
        # signs nothing, not even a cancel (found by the third outside attacker)
        raise ForbiddenError(f"the key of chain {chain.chain} changed at {chain.recovery.at}: "
                             f"a recovery took effect, and key {chain.recovery.owner} owns it")
    # 2. seq: no replay, no reorder, no gap.
    if intent.seq != chain.seq + 1:
        raise BadSeqError(f"seq {intent.seq} must be {chain.seq + 1}", expected=chain.seq + 1)
    # 3. time.
    _check_time(intent, now)
    # 4. the type's own rules.
    body = intent.body
    if isinstance(body, PaymentBody):
        if body.to_validator not in (None, bank.name):
            return _transfer_out(bank, intent, body, chain, now, peers)
        return _transfer(bank, intent, body, chain, counterparty, now)
    if isinstance(body, OfferBody):
        return _offer(bank, intent, body, chain, now, peers)
    if isinstance(body, CancelBody):
        return _cancel(bank, intent, body, chain, now)
    if isinstance(body, TakeBody):
        return _take(bank, intent, body, chain, now, peers, offer, position or Position(),
                     counterparty, remaining, ranking)
    if isinstance(body, RedeemBody):
        return _redeem(bank, intent, body, chain, counterparty, now)
    if isinstance(body, LockBody):
        return _lock(bank, intent, body, chain, counterparty, now, peers)
    if isinstance(body, ClaimBody):
        return _claim(bank, intent, body, chain, counterparty, now, lock, position)
    if isinstance(body, RotateKeyBody):
        if body.owner == chain.owner:
            raise BadRequestRuleError("the new owner key is the current one")
        entry = _entry(bank, chain, now, "rotate_key", intent, [], [])
        return Outcome((entry,), (chain.advance(entry),))
    if isinstance(body, CancelRecoveryBody):
        if chain.recovery is None or chain.recovery.entry != body.recovery:
            raise NotFoundError(f"no recovery {body.recovery} is pending on chain {chain.chain}")
        entry = _entry(bank, chain, now, "cancel_recovery", intent, [], [])
        return Outcome((entry,), (chain.advance(entry),))
    if isinstance(body, RecoverBody):
        raise BadRequestRuleError("a recover intent goes to POST /v1/chains/<id>/recovery with the "
                                  "chain's KYC record")
    raise EncodingError(f"intent type {intent.type!r} is not supported by this validator yet")


def _counterparty_here(bank: BankIdentity, to_validator: str | None, to: str,
                       counterparty: ChainState | None) -> ChainState:
    if to_validator is not None and to_validator != bank.name:
        raise UnknownValidatorError(
            f"recipient bank {to_validator} is not a trusted peer of {bank.name}")
    if counterparty is None or counterparty.chain != to:
        raise UnknownChainError(f"recipient chain {to} is not registered at {bank.name}")
    return counterparty


def _check_can_give(chain: ChainState, asset: str, amount: int) -> None:
    """An exchange may sell the chain's own asset (its liability grows, within its max
    supply), else only funds."""
    if chain.issues(asset):
        _check_supply(chain, asset, amount, "selling")
    else:
        _check_funds(chain, asset, amount)


def _check_supply(chain: ChainState, asset: str, amount: int, doing: str) -> None:
    """The issuer's own asset out, with ``amount`` more and all it holds for open offers
    (which may yet settle), stays within the chain's ``max_supply``. Found by the outside
    attacker: an issuer refused an issue past its supply sold the same amount by an offer."""
    ceiling = chain.params.get("max_supply", {}).get(UAI.parse(asset).code)
    if ceiling is None:
        return
    own = chain.balances.get(asset, Balance())
    outstanding = -own.balance + own.held + amount
    if outstanding > int(ceiling):
        raise LimitExceededError(
            f"{doing} {amount} would put {outstanding} {asset} out; the chain's "
            f"max supply is {ceiling}", limit=str(ceiling))


def _check_funds(chain: ChainState, asset: str, amount: int) -> None:
    if asset not in chain.balances:
        raise UnknownAssetError(f"chain {chain.chain} holds no {asset}")
    have = available(chain, asset)
    if have < amount:
        raise InsufficientFundsError(
            f"amount {amount} of {asset} exceeds the available {have}", available=str(have))


def _check_daily_limit(chain: ChainState, asset: str, amount: int, now: int) -> None:
    limit = chain.params.get("daily_limit", {}).get(asset)
    if limit is None:
        return
    spent = chain.spent_today(asset, now // DAY_MS)
    if spent + amount > int(limit):
        raise LimitExceededError(f"sending {amount} {asset} would make {spent + amount} today; the "
                                 f"chain's daily limit is {limit}",
                                 limit=str(limit), spent=str(spent))


def _check_kyc(chain: ChainState, recipient: ChainState) -> None:
    if chain.params.get("kyc_recipients") and not recipient.kyc:
        raise KycRequiredError(f"chain {chain.chain} may only pay KYC'd recipients and "
                               f"{recipient.address} has no KYC record")


def _debit_and_credit(bank: BankIdentity, kind: str, intent: SignedIntent, chain: ChainState,
                      to: ChainState, now: int) -> Outcome:
    debit = _entry(bank, chain, now, kind, intent, entry_effects(kind, intent.body, bank.name), [])
    try:
        after = chain.advance(debit)
        credit = _entry(bank, to, now, "credit", None,
                        entry_effects("credit", intent.body, bank.name), [debit])
        to_after = to.advance(credit)
    except VerificationError as e:  # the checks above should make this unreachable
        raise InsufficientFundsError(str(e)) from e
    return Outcome((debit, credit), (after, to_after))


def _transfer(bank: BankIdentity, intent: SignedIntent, body: PaymentBody, chain: ChainState,
              counterparty: ChainState | None, now: int) -> Outcome:
    asset = str(body.asset)
    if body.route is not None:
        raise BadRequestRuleError(f"a payment to a customer of {bank.name} goes through no "
                                  "correspondent")
    to = _counterparty_here(bank, body.to_validator, body.to, counterparty)
    if to.chain == chain.chain:
        raise BadRequestRuleError("a chain cannot pay itself")
    if intent.type == "issue":
        if not chain.issues(asset):
            raise ForbiddenError(f"only {body.asset.issuer} may issue {asset}; this chain is "
                                 f"{chain.address}")
        _check_supply(chain, asset, body.amount, "issuing")
    else:
        _check_funds(chain, asset, body.amount)
        _check_daily_limit(chain, asset, body.amount, now)
    _check_kyc(chain, to)
    return _debit_and_credit(bank, intent.type, intent, chain, to, now)


def _redeem(bank: BankIdentity, intent: SignedIntent, body: RedeemBody, chain: ChainState,
            issuer: ChainState | None, now: int) -> Outcome:
    asset = str(body.asset)
    if chain.issues(asset):
        raise BadRequestRuleError(
            f"{chain.address} issues {asset}; an issuer cannot redeem its own "
            "asset")
    if body.asset.issuer_validator != bank.name:
        raise UnknownValidatorError(
            f"{asset} is issued at {body.asset.issuer_validator}, not at {bank.name}")
    if issuer is None or issuer.address != body.asset.issuer:
        raise UnknownChainError(f"issuer {body.asset.issuer} is not registered at {bank.name}")
    _check_funds(chain, asset, body.amount)
    _check_daily_limit(chain, asset, body.amount, now)
    return _debit_and_credit(bank, "redeem", intent, chain, issuer, now)



def _hold_entry(bank: BankIdentity, intent: SignedIntent, chain: ChainState, now: int) -> Outcome:
    entry = _entry(bank, chain, now, intent.type, intent,
                   entry_effects(intent.type, intent.body, bank.name), [])
    try:
        return Outcome((entry,), (chain.advance(entry),))
    except VerificationError as e:  # the checks before should make this unreachable
        raise InsufficientFundsError(str(e)) from e


def _transfer_out(bank: BankIdentity, intent: SignedIntent, body: PaymentBody, chain: ChainState,
                  now: int, peers: frozenset[str]) -> Outcome:
    """A payment to another bank's customer: hold the amount until the peer credits it."""
    if intent.type != "payment":
        raise UnknownValidatorError(
            f"an {intent.type} pays a customer of {bank.name}; pay customers of "
            f"{body.to_validator} with a payment")
    # through correspondents (docs/adr/0015), the hold goes to the first of them
    first = body.to_validator if body.route is None or not body.route.via else body.route.via[0]
    if body.route is not None and (body.route.forward is not None or bank.name in body.route.via):
        raise BadRequestRuleError("only a correspondent bank forwards a routed hold, and a "
                                  "route goes through other banks than the payer's")
    if body.route is not None and not body.asset.is_bank_iou:
        raise RouteRefusedError(f"a route moves banks' IOUs, and {body.asset} is a "
                                "customer's: pay it to a customer of a peer, or pay a bank's")
    if first not in peers:
        raise UnknownValidatorError(
            f"recipient bank {first} is not a trusted peer of {bank.name}")
    asset = str(body.asset)
    if chain.issues(asset):
        raise BadRequestRuleError(
            f"{chain.address} issues {asset}: issue it to customers of {bank.name}, "
            "who may pay it on")
    check_crossing(bank.name, first, asset)
    _check_funds(chain, asset, body.amount)
    _check_daily_limit(chain, asset, body.amount, now)
    return _hold_entry(bank, intent, chain, now)


def offer_terms_error(now: int, body: OfferBody) -> str | None:
    """Why an offer made at ``now`` may not expire when it does, or None: after now and within
    MAX_OFFER_MS, and its window closing DECIDING_MS or more before it (tchain.selection). A
    bank checks its customer's offer by it, and a peer's offer at the entry's time (its
    bank's ``now``): one rule, so the two cannot disagree."""
    if not now < body.expires <= now + MAX_OFFER_MS:
        return (f"an offer expires after now ({now}) and within {MAX_OFFER_MS} ms, "
                f"got {body.expires}")
    if body.window is not None and now + body.window + DECIDING_MS > body.expires:
        return (f"the offer's window ({body.window} ms) must close {DECIDING_MS} ms or more "
                f"before it expires at {body.expires}, so its takes are decided while it is "
                "open")
    return None


def _offer(bank: BankIdentity, intent: SignedIntent, body: OfferBody, chain: ChainState,
           now: int, peers: frozenset[str]) -> Outcome:
    """An offer is funded: its sold amount is held until it is taken, cancelled or expires.
    What it buys is an IOU of this bank or of a bank it trusts: nobody could pay in any other
    (a new user found funds held for an offer nobody could ever take)."""
    terms = offer_terms_error(now, body)
    if terms is not None:
        raise BadRequestRuleError(terms)
    issuer = body.buy.asset.issuer_validator
    if issuer != bank.name and issuer not in peers:
        raise UnknownValidatorError(
            f"the offer buys {body.buy.asset}, an IOU of {issuer}, which is neither "
            f"{bank.name} nor a bank it trusts: nobody could pay in it")
    _check_can_give(chain, str(body.sell.asset), body.sell.amount)
    _check_daily_limit(chain, str(body.sell.asset), body.sell.amount, now)
    return _hold_entry(bank, intent, chain, now)


def _cancel(bank: BankIdentity, intent: SignedIntent, body: CancelBody, chain: ChainState,
            now: int) -> Outcome:
    hold = chain.holds.get(body.offer)
    if hold is None or hold.kind != "offer":
        raise UnknownOfferError(f"offer {body.offer} is not open on chain {chain.chain}")
    entry = _entry(bank, chain, now, "cancel", intent,
                   list(closing_effects(hold, "cancel")), [])
    return Outcome((entry,), (chain.advance(entry),))


def _take(bank: BankIdentity, intent: SignedIntent, body: TakeBody, chain: ChainState, now: int,
          peers: frozenset[str], offer: SignedEntry | None, position: Position,
          maker: ChainState | None, remaining: int | None, ranking: bool = False
          ) -> Outcome:
    """The taker's side of a peer's offer: hold what they give until the maker's bank settles
    or refuses. Both assets must be IOUs of the two banks, and the maker's bank may sell us
    our own IOU only out of what it holds of it (tchain.books): else the taker would give for
    nothing. An offer made here is exchanged at once (:func:`_exchange_here`)."""
    if body.validator != bank.name and body.validator not in peers:
        raise UnknownValidatorError(f"bank {body.validator} is not a trusted peer of {bank.name}")
    offer_body = None if offer is None or offer.intent is None else offer.intent.body
    if offer is None or offer.id != body.offer or not isinstance(offer_body, OfferBody):
        raise UnknownOfferError(f"offer {body.offer} is not known at {bank.name}")
    here = body.validator == bank.name
    # what remains of the offer: here, the maker's hold itself; at a taker's bank, what the
    # maker's bank last told (its news of fills, never more than the offer sells)
    makers = here and maker is not None and maker.chain == offer.chain_id
    held = maker.holds.get(offer.id) if makers and maker is not None else None
    if makers and held is None:
        raise OfferClosedError(f"offer {body.offer} is no longer open")
    check_take(body, held if held is not None else offer_hold(offer, remaining))
    if now >= offer_body.expires:
        raise OfferClosedError(f"offer {body.offer} expired at {offer_body.expires}")
    _check_can_give(chain, str(body.sell.asset), body.sell.amount)
    _check_daily_limit(chain, str(body.sell.asset), body.sell.amount, now)
    if here:
        closes = window_closes(offer)
        if closes is not None and (now < closes or ranking):  # it waits: docs/adr/0009
            _maker_here(body, chain, maker, offer)
            return _hold_entry(bank, intent, chain, now)
        return _exchange_here(bank, intent, body, chain, maker, offer, now)
    check_crossing(bank.name, body.validator, str(body.sell.asset))
    check_incoming(bank.name, body.validator, str(body.buy.asset), body.buy.amount, position)
    return _hold_entry(bank, intent, chain, now)


def check_take(take: TakeBody, hold: Hold) -> str:
    """A take's terms against what remains of the offer (``hold``): ``"settle"`` if it takes
    all that remains, ``"fill"`` if a part (tchain.state.check_take_terms).

    Raises:
        OfferClosedError: it asks for more than remains, but no more than the offer sold
            (the taker's bank had not heard of a fill yet): ``remaining`` says what is left.
        BadRequestRuleError: terms no honest bank accepts from its customer: other assets,
            another price, more than the offer ever sold, a part of a whole-only offer, a part
            below its ``min_fill`` that is not all that remains.
    """
    if hold.amount < take.buy.amount <= hold.sells:
        raise OfferClosedError(f"offer {take.offer} has {hold.amount} {hold.asset} left; the "
                               f"take asks for {take.buy.amount}", remaining=str(hold.amount))
    try:
        return check_take_terms(hold, take)
    except VerificationError as e:
        raise BadRequestRuleError(f"the take's terms do not mirror offer {take.offer}: "
                                  f"{e.message}") from e


def check_offer_open(offer_id: str, record: OfferRecord, now: int | None = None) -> None:
    """Refuse to take an offer its record (tchain.flow_states.OfferRecord) says is no longer open:
    taken or cancelled, or, given ``now``, expired (the maker's bank, settling at once;
    a taker's bank leaves the expiry to :func:`decide`, which names it).

    Raises:
        OfferClosedError: it is not open.
    """
    if not record.is_open or (now is not None and now >= record.expires):
        raise OfferClosedError(f"offer {offer_id} is no longer open")


def _maker_here(body: TakeBody, taker: ChainState, maker: ChainState | None,
                offer: SignedEntry) -> ChainState:
    """The maker's chain of an offer made here, which is not the taker's.

    Raises:
        NotFoundError: the maker's chain is not here. RuleError: a chain taking its own offer.
    """
    if maker is None or maker.chain != offer.chain_id:
        raise UnknownOfferError(f"offer {body.offer} is not open at {body.validator}")
    if maker.chain == taker.chain:
        raise BadRequestRuleError(
            f"offer {body.offer} is this chain's own; cancel it rather than take it")
    return maker


def _exchange_here(bank: BankIdentity, intent: SignedIntent, body: TakeBody, taker: ChainState,
                   maker: ChainState | None, offer: SignedEntry, now: int) -> Outcome:
    """Two customers of this bank exchange (paper §5.1), in one write: the taker's take, the
    maker's settle with the take as evidence, and the taker's settle with the maker's as
    evidence: the same three entries two banks would make, so a chain proves itself the same
    way whichever bank the other side is at.

    Raises:
        NotFoundError: the maker's chain is not here. RuleError: a chain taking its own offer,
            or the offer no longer open (offer_closed).
    """
    maker = _maker_here(body, taker, maker, offer)
    take = _entry(bank, taker, now, "take", intent, entry_effects("take", body, bank.name), [])
    try:
        holding = taker.advance(take)
        offered = maker.holds.get(offer.id)
        if offered is None:
            raise OfferClosedError(f"offer {body.offer} is no longer open")
        if check_take(body, offered) == "fill":  # a part: the rest stays open
            sold = _entry(bank, maker, now, "fill", None,
                          list(fill_effects(offered, body.buy.amount, body.sell.amount)),
                          [take])
        else:
            sold = _entry(bank, maker, now, "settle", None,
                          list(closing_effects(offered, "settle", body)), [take])
        maker_after = maker.advance(sold)
        bought = _entry(bank, holding, now, "settle", None,
                        list(closing_effects(holding.holds[take.id], "settle")), [sold])
        taker_after = holding.advance(bought)
    except VerificationError as e:  # the checks above should make this unreachable
        raise InsufficientFundsError(str(e)) from e
    return Outcome((take, sold, bought), (holding, maker_after, taker_after))


# --- hash-time-locked transfers (tchain.htlc, docs/adr/0008-hash-time-locks.md) -----------

def _lock(bank: BankIdentity, intent: SignedIntent, body: LockBody, chain: ChainState,
          payee: ChainState | None, now: int, peers: frozenset[str]) -> Outcome:
    """Hold the amount for the payee until the lock is claimed or expires: funds, limits and
    the payee as for a payment (a lock never mints: an issuer issues first)."""
    asset = str(body.asset)
    terms = lock_terms_error(now, body, chain.address)
    if terms is not None:
        raise BadRequestRuleError(terms)
    if body.to_validator in (None, bank.name):
        to = _counterparty_here(bank, body.to_validator, body.to, payee)
        if to.chain == chain.chain:
            raise BadRequestRuleError("a chain cannot lock value for itself")
        _check_kyc(chain, to)
    elif body.to_validator not in peers:
        raise UnknownValidatorError(
            f"recipient bank {body.to_validator} is not a trusted peer of {bank.name}")
    else:
        check_crossing(bank.name, body.to_validator, asset)
    _check_funds(chain, asset, body.amount)
    _check_daily_limit(chain, asset, body.amount, now)
    return _hold_entry(bank, intent, chain, now)


def _claim(bank: BankIdentity, intent: SignedIntent, body: ClaimBody, chain: ChainState,
           payer: ChainState | None, now: int, record: LockRecord | None,
           position: Position | None) -> Outcome:
    """The payee takes a lock with its preimage, before it expires by our clock, if nothing
    was decided on it yet: the claim entry credits them (the lock its evidence, the preimage
    in their signed intent). A lock made here is settled on the payer's chain in the same
    write; a peer's is told by the caller (``claimed``)."""
    if record is None or record.lock is None:
        raise NotFoundError(f"lock {body.lock} is not known at {bank.name}")
    lock = SignedEntry.trusted(record.lock)
    terms = lock_body(lock)
    if terms.to != chain.chain:
        raise ForbiddenError(f"lock {body.lock} is for chain {terms.to}, not {chain.chain}")
    if record.state is not LockState.OPEN:
        raise ConflictError(f"lock {body.lock} was {record.state.value} already")
    if now >= terms.expires:
        raise ExpiredError(f"lock {body.lock} expired at {terms.expires} (it is {now} here)")
    if hash_of(body.preimage) != terms.hash:
        raise BadRequestRuleError(f"the preimage hashes to {hash_of(body.preimage)}, not to "
                                  f"the lock's hash {terms.hash}")
    if record.validator != bank.name:  # the peer may give us our IOU only out of its own
        check_incoming(bank.name, record.validator, str(terms.asset), terms.amount,
                       position or Position())
    claim = _entry(bank, chain, now, "claim", intent,
                   entry_effects("claim", terms, bank.name), [lock])
    after = chain.advance(claim)
    if record.validator != bank.name:
        return Outcome((claim,), (after,))
    hold = None if payer is None or payer.chain != lock.chain_id else payer.holds.get(lock.id)
    if payer is None or hold is None:
        raise ConflictError(f"lock {body.lock} holds nothing open")
    settle = _entry(bank, payer, now, "settle", None, list(closing_effects(hold, "settle")),
                    [claim])
    return Outcome((claim, settle), (after, payer.advance(settle)))


# --- recovering a lost key with the bank's help ------------------------------------------------

RECOVERY_CODE_MIN = 26  # characters: 128 bits in base32, as the wallet makes them


_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def has_recovery_code(kyc_record: Any) -> bool:
    """Whether a KYC record holds a ``recovery_code`` of the wallets' shape, the secret part of
    what a recovery shows (§3): base32, long enough for 128 bits. The bank cannot see
    whether the bits were random; a registration with another shape is refused, so that no
    customer believes a guessable code protects them (the fourth outside attacker)."""
    code = kyc_record.get("recovery_code") if isinstance(kyc_record, dict) else None
    return isinstance(code, str) and len(code) >= RECOVERY_CODE_MIN and set(code) <= _BASE32


def check_recover_intent(intent: SignedIntent, chain_id: str, now: int) -> RecoverBody:
    """Steps 1-3 of a recovery, which need no state: a recover intent for ``chain_id``, signed
    by the key it asks for, seq 0, fresh. The bank charges the chain's budget of attempts
    only for requests that pass them (a budget spent by unsigned requests let anyone who
    knew an address lock its owner out of recovery: the fourth outside attacker).

    Raises:
        EncodingError, SignatureError, BadSeqError, StaleTimeError.
    """
    body = intent.body
    if not isinstance(body, RecoverBody) or intent.chain != chain_id:
        raise EncodingError(f"a recovery of chain {chain_id} is a recover intent naming it")
    # 1. the signature, by the key that asks to own the chain (proof of possession).
    intent.verify(body.owner)
    # 2. seq 0: it is not the owner's, and does not take the owner's next seq.
    if intent.seq != 0:
        raise BadSeqError(f"seq {intent.seq} must be 0 for recover", expected=0)
    # 3. time.
    _check_time(intent, now)
    return body


def recover(bank: BankIdentity, intent: SignedIntent, chain: ChainState, kyc_record: bytes | None,
            kept_kyc: bytes | None, now: int) -> Outcome:
    """A new key asks for a chain whose key was lost (the paper gives the bank the KYC and
    second-factor role): it signs a ``recover`` intent, and shows the KYC record whose hash
    the chain's genesis holds; the entry takes effect only after the chain's recovery delay,
    during which the current key may cancel it (a thief with the KYC record gets nothing if
    the owner is watching).

    ``kyc_record``: the canonical bytes of the record shown; ``kept_kyc``: the bank's own copy.

    Raises:
        SignatureError, RuleError, ForbiddenError: naming the failed check.
    """
    body = check_recover_intent(intent, chain.chain, now)
    # 4. a chain a stranger could not guess the record of: a customer's, whose KYC record
    #    holds a recovery code (the third outside attacker recovered chains whose records
    #    named only a person, and the bank's own chain, the issuer of its IOUs).
    if chain.owner == bank.public_key:
        raise ForbiddenError(f"chain {chain.chain} is the bank's own: its key is the "
                             "operator's, and it cannot be recovered")
    if kept_kyc is None:
        raise ForbiddenError(f"chain {chain.chain} was opened without a KYC record: its bank "
                             "cannot tell its owner, and it cannot be recovered")
    if not has_recovery_code(parse(kept_kyc)):
        raise ForbiddenError(f"the KYC record of chain {chain.chain} holds no recovery code "
                             f"of at least {RECOVERY_CODE_MIN} characters: a record that only "
                             "names a person can be guessed, and the chain cannot be recovered")
    # 5. the KYC record the chain was opened with; nothing pending; no recover sent again.
    if kyc_record != kept_kyc:
        raise ForbiddenError(f"the KYC record shown is not the one chain {chain.chain} was "
                             "opened with")
    if chain.recovery is not None:
        raise ConflictError(f"a recovery of chain {chain.chain} is pending already (entry "
                            f"{chain.recovery.entry}, effective at {chain.recovery.at})")
    if intent.time <= chain.last_recover:
        raise ConflictError(f"this recover is no later than chain {chain.chain}'s last "
                            f"({chain.last_recover}): a recover is used once")
    if body.owner == chain.owner:
        raise BadRequestRuleError("the key to recover to is the chain's current key")
    entry = _entry(bank, chain, now, "recover", intent, [], [])
    return Outcome((entry,), (chain.advance(entry),))


def complete_recovery(bank: BankIdentity, chain: ChainState, asked: SignedEntry, now: int
                      ) -> Outcome:
    """The recovery ``asked`` for has waited its delay uncancelled: its key owns the chain."""
    entry = _entry(bank, chain, now, "recovered", None, [], [asked])
    try:
        return Outcome((entry,), (chain.advance(entry),))
    except VerificationError as e:
        raise ConflictError(e.message) from e


# --- entries the validator makes on its own: the other halves of cross-bank flows -----------

def credit_transfer(bank: BankIdentity, payee: ChainState, hold: SignedEntry, now: int, *,
                    kyc_required: bool = False) -> Outcome:
    """Credit a payee with a peer's signed hold of a payment to them (paper, Pic. 4).

    The caller has checked the hold (tchain.peer_claims.checked_hold: signed by the pinned
    key of the peer it came from, by its payer, holding exactly what it pays) and that the
    peer may give what it pays (tchain.books).
    """
    body = hold.intent.body if hold.intent is not None else None
    assert isinstance(body, PaymentBody | PlanBody)
    if isinstance(body, PlanBody):  # a plan's hold names its payee by address
        if body.to != payee.address:
            raise UnknownChainError(f"the plan's hold is for {body.to}, not for "
                                    f"{payee.address}")
    elif body.to_validator != bank.name or body.to != payee.chain:
        raise UnknownChainError(f"the payment is for {body.to} at {body.to_validator}, not for a "
                                f"chain of {bank.name}")
    if kyc_required and not payee.kyc:
        raise KycRequiredError(
            f"the payer may only pay KYC'd recipients and {payee.address} has no "
            "KYC record")
    credit = _entry(bank, payee, now, "credit", None,
                    entry_effects("credit", body, bank.name), [hold])
    return Outcome((credit,), (payee.advance(credit),))


def hold_for_plan(bank: BankIdentity, chain: ChainState, consent: SignedIntent, now: int
                  ) -> Outcome:
    """The hold of an execution plan's instruction on its customer's chain, authorised by the
    customer's signed consent to it (docs/protocol.md §14): a ``plan`` entry carrying it.

    The caller (the plan's execution) checked the consent is the one the plan's approvals
    carry for this instruction and that its turn has come; here, the chain's rules: its owner
    signed it, the funds are there, the day's limit holds.

    Raises:
        SignatureError, UnknownAssetError, InsufficientFundsError, LimitExceededError.
    """
    body = consent.body
    assert isinstance(body, PlanBody) and consent.chain == chain.chain
    consent.verify(chain.owner)
    asset = str(body.asset)
    _check_funds(chain, asset, body.amount)
    _check_daily_limit(chain, asset, body.amount, now)
    entry = _entry(bank, chain, now, "plan", consent, entry_effects("plan", body, bank.name), [])
    return Outcome((entry,), (chain.advance(entry),))


def settle_hold(bank: BankIdentity, chain: ChainState, peer: SignedEntry, now: int) -> Outcome:
    """Complete a hold with the peer's signed entry that did the other side.

    Raises:
        RuleError: the hold is not open or the peer's entry does not match it.
    """
    hold_id = settled_by(peer)
    hold = chain.holds.get(hold_id)
    if hold is None:
        raise ConflictError(f"entry {hold_id} holds nothing open on chain {chain.chain}")
    entry = _entry(bank, chain, now, "settle", None,
                   list(closing_effects(hold, "settle", taken_by(peer))), [peer])
    try:
        return Outcome((entry,), (chain.advance(entry),))
    except VerificationError as e:
        raise BadRequestRuleError(
            f"the peer's {peer.kind} does not settle {hold_id}: {e.message}") from e


def fill_hold(bank: BankIdentity, chain: ChainState, take: SignedEntry, now: int) -> Outcome:
    """The maker's side of a take of part of its offer: the ``fill`` entry that moves the part
    out of the offer's hold and brings its price in, the rest left open. The caller checked
    the take's terms (:func:`check_take` said ``"fill"``).

    Raises:
        RuleError: the offer is not open, or the take is not a fill of it.
    """
    body = take.intent.body if take.intent is not None else None
    assert isinstance(body, TakeBody)
    hold = chain.holds.get(body.offer)
    if hold is None:
        raise OfferClosedError(f"offer {body.offer} is no longer open")
    entry = _entry(bank, chain, now, "fill", None,
                   list(fill_effects(hold, body.buy.amount, body.sell.amount)), [take])
    try:
        return Outcome((entry,), (chain.advance(entry),))
    except VerificationError as e:
        raise BadRequestRuleError(f"the take does not fill {body.offer}: {e.message}") from e


def release_hold(bank: BankIdentity, chain: ChainState, holding: SignedEntry, now: int) -> Outcome:
    """Give back what ``holding`` set aside: refused, expired or lost to another taker."""
    hold = chain.holds.get(holding.id)
    if hold is None:
        raise ConflictError(f"entry {holding.id} holds nothing open on chain {chain.chain}")
    entry = _entry(bank, chain, now, "release", None,
                   list(closing_effects(hold, "release")), [holding])
    return Outcome((entry,), (chain.advance(entry),))
