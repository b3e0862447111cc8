"""Intents and entries (PROTOCOL.md §3 and §4) as frozen, validated views.

Each object keeps the exact document it was parsed from (``doc``), and ids and signatures are
always computed over that document, never over a rebuilt one: a field we do not know is refused
outright rather than silently dropped, so what we hash is what was signed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tchain.digest import digest_canonical
from tchain.encoding import canonical, check_value, encode_built, envelope, parse, splice
from tchain.errors import EncodingError, SignatureError
from tchain.keys import SIGNATURES, Ahead, SigningKey, check_public_key, is_hex
from tchain.values import (
    UAI,
    parse_address,
    parse_delta,
    parse_name,
    parse_positive_amount,
    parse_validator_name,
)

__all__ = [
    "GENESIS_PREV",
    "INTENT_TYPES",
    "WINDOW_MAX_MS",
    "WINDOW_MIN_MS",
    "CancelBody",
    "CancelRecoveryBody",
    "ClaimBody",
    "Effect",
    "LockBody",
    "OfferBody",
    "PaymentBody",
    "PlanBody",
    "RecoverBody",
    "RedeemBody",
    "RegisterBody",
    "RotateKeyBody",
    "Route",
    "SignedEntry",
    "SignedIntent",
    "TakeBody",
    "Terms",
    "fill_price",
]

GENESIS_PREV = "0" * 64
INTENT_TYPES = frozenset({"register", "payment", "issue", "redeem", "offer", "cancel", "take",
                          "rotate_key", "recover", "cancel_recovery", "lock", "claim", "plan"})
ENTRY_KINDS = frozenset({"genesis", "payment", "issue", "redeem", "credit", "rotate_key",
                         "offer", "cancel", "take", "settle", "release", "recover",
                         "cancel_recovery", "recovered", "fill", "lock", "claim", "plan"})
MAX_MEMO = 256
PARAM_KEYS = frozenset({"daily_limit", "kyc_recipients", "max_supply", "recovery_delay"})
RECOVERY_DELAY_MS = 7 * 86_400_000  # a recovery's wait when the chain's params name none
MAX_RECOVERY_DELAY_MS = 365 * 86_400_000
WINDOW_MIN_MS = 1_000  # an offer's selection window: a second at least (docs/adr/0009)
WINDOW_MAX_MS = 3_600_000  # and an hour at most: takers' holds wait through it


def _obj(value: Any, what: str, required: set[str], optional: frozenset[str] = frozenset()
         ) -> dict[str, Any]:
    """Check that ``value`` is an object with exactly the required keys and some optional ones."""
    if not isinstance(value, dict):
        raise EncodingError(f"{what} must be a JSON object, got {type(value).__name__}")
    missing = required - value.keys()
    if missing:
        raise EncodingError(f"{what} lacks {', '.join(sorted(missing))}")
    unknown = value.keys() - required - optional
    if unknown:
        raise EncodingError(f"{what} has unknown field(s) {', '.join(sorted(unknown))}")
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(f"{what} must be a JSON integer, got {value!r}")
    check_value(value)
    return value


def _chain_id(value: Any, what: str) -> str:
    if not is_hex(value, 64):
        raise EncodingError(f"{what} must be a chain id (64 lowercase hex), got {value!r}")
    return str(value)


MAX_VIA = 3  # correspondents on one route: four banks in a line, and one more
_ROUTE_FIELDS = frozenset({"via", "receive", "forward", "keys"})


def _route(b: dict[str, Any], to_validator: str | None, amount: int) -> Route | None:
    """A payment's route fields (docs/protocol.md §3): none, the payer's ``via`` and
    ``receive``, or a correspondent's ``forward`` and the ``via`` still ahead."""
    if not _ROUTE_FIELDS & b.keys():
        return None
    via = b.get("via", [])
    if not isinstance(via, list) or len(via) > MAX_VIA or \
            len(set(map(str, via))) != len(via) or to_validator is None:
        raise EncodingError(f"via must be a list of at most {MAX_VIA} distinct bank names, "
                            "with to_validator set")
    hops = tuple(parse_validator_name(v) for v in via)
    if to_validator in hops:
        raise EncodingError(f"via names the payee's bank {to_validator}")
    if "forward" in b:
        if "receive" in b or "keys" in b:
            raise EncodingError("a correspondent's forward carries no receive nor keys: the "
                                "payer's hold says them")
        return Route(hops, None, _chain_id(b["forward"], "forward"))
    if not hops or "receive" not in b or "keys" not in b:
        raise EncodingError("a payer's route has via (one bank or more), receive and keys")
    receive = parse_positive_amount(b["receive"], "receive")
    if receive > amount:
        raise EncodingError(f"receive {receive} is more than the amount {amount}")
    return Route(hops, receive, None, _route_keys(b["keys"], (*hops, to_validator)))


def _route_keys(value: Any, banks: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The payer's ``keys``: the public key of every bank its route passes after its own, by
    name, as its wallet checked them (docs/adr/0015, "Update (attack 13)")."""
    if not isinstance(value, dict) or set(value) != set(banks):
        raise EncodingError(f"keys names the key of each of {list(banks)}, and only them")
    for key in value.values():
        try:
            check_public_key(key)
        except SignatureError as e:
            raise EncodingError(f"keys: {e.message}") from e
    return tuple((bank, str(value[bank])) for bank in banks)


def _memo(body: dict[str, Any]) -> str | None:
    memo = body.get("memo")
    if memo is not None and (not isinstance(memo, str) or len(memo) > MAX_MEMO):
        raise EncodingError(f"memo must be a string of at most {MAX_MEMO} characters")
    return memo


def _amount_map(value: Any, what: str, key_parser: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise EncodingError(f"{what} must be an object of amounts, got {value!r}")
    out = {}
    for key, amount in value.items():
        key_parser(key)
        out[key] = parse_positive_amount(amount, f"{what}[{key}]")
    return out


def parse_params(value: Any) -> dict[str, Any]:
    """Check a chain's params from its genesis: the rules its bank enforces on it.

    ``daily_limit``: {UAI: amount} most the chain may send per UTC day;
    ``kyc_recipients``: true if every recipient must have a KYC record at its bank;
    ``max_supply``: {CODE: amount} most of the chain's own asset it may have outstanding;
    ``recovery_delay``: ms (a string of digits) a recovery of the chain's key waits before it
    takes effect, while the current key may cancel it (RECOVERY_DELAY_MS when absent).
    """
    params = _obj(value, "params", set(), PARAM_KEYS)
    if "daily_limit" in params:
        _amount_map(params["daily_limit"], "params.daily_limit", UAI.parse)
    if "max_supply" in params:
        def code(c: str) -> None:
            UAI.parse(f"x:{c}")
        _amount_map(params["max_supply"], "params.max_supply", code)
    if "kyc_recipients" in params and not isinstance(params["kyc_recipients"], bool):
        raise EncodingError("params.kyc_recipients must be true or false")
    if "recovery_delay" in params and \
            parse_positive_amount(params["recovery_delay"], "params.recovery_delay") > \
            MAX_RECOVERY_DELAY_MS:
        raise EncodingError(f"params.recovery_delay is at most {MAX_RECOVERY_DELAY_MS} ms")
    return params


@dataclass(frozen=True, slots=True)
class RegisterBody:
    """Open chain ``name`` at bank ``bank`` for key ``owner``; ``kyc`` hashes the KYC record.

    The bank is named so that a signed registration opens the chain at that bank only. A
    chain opened before registrations named their bank has ``bank`` None: such a register is
    still read (its chain verifies), never accepted anew (tchain.rules.make_genesis).
    """

    name: str
    bank: str | None
    owner: str
    kyc: str | None
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PaymentBody:
    """A payment or an issue: ``amount`` of ``asset`` to chain ``to`` at ``to_validator``."""

    to: str
    to_validator: str | None
    asset: UAI
    amount: int
    memo: str | None
    route: Route | None = None  # through correspondent banks (docs/adr/0015)


@dataclass(frozen=True, slots=True)
class Route:
    """A payment's way through correspondent banks (docs/adr/0015-correspondent-routes.md).

    The payer's hold names every bank it passes, ``via`` in order, and ``receive``, the least
    the payee must get (``amount - receive`` is the most the fees may take: what the payer
    consented to). A correspondent's own hold, handing the payment on, names the payer's
    side it forwards (``forward``: the upstream hold's entry id, carried as its evidence) and
    the banks still ahead (``via``, empty at the last correspondent).
    """

    via: tuple[str, ...]
    receive: int | None
    forward: str | None
    keys: tuple[tuple[str, str], ...] = ()  # the payer's: each bank after its own, by name

    def key_of(self, bank: str) -> str | None:
        """The key the payer signed for ``bank`` (None on a correspondent's hold, or for a
        bank off the route)."""
        return dict(self.keys).get(bank)



@dataclass(frozen=True, slots=True)
class RedeemBody:
    """Give ``amount`` of ``asset`` back to its issuer."""

    asset: UAI
    amount: int
    memo: str | None


@dataclass(frozen=True, slots=True)
class RotateKeyBody:
    owner: str


@dataclass(frozen=True, slots=True)
class Terms:
    """One side of an exchange: ``amount`` of ``asset``."""

    asset: UAI
    amount: int

    @classmethod
    def from_dict(cls, value: Any, what: str) -> Terms:
        t = _obj(value, what, {"asset", "amount"})
        return cls(UAI.parse(t["asset"]), parse_positive_amount(t["amount"], f"{what}.amount"))

    def to_dict(self) -> dict[str, str]:
        return {"asset": str(self.asset), "amount": str(self.amount)}


@dataclass(frozen=True, slots=True)
class OfferBody:
    """Sell ``sell`` for ``buy``, open until ``expires`` (ms).

    ``min_fill`` None: the whole offer or nothing (as every offer was before partial fills,
    so an old offer is never filled in parts its maker did not agree to). Otherwise it may be
    taken in parts of at least ``min_fill`` of ``sell``'s asset, or of the whole remainder,
    each at :func:`fill_price` (docs/adr/0007-partial-fills.md).

    ``window`` (ms) None: the first take its bank commits wins, at the price. Otherwise the
    takes that come in the window after the offer's entry are ranked, and may bid more than
    the price (docs/adr/0009-best-taker.md).
    """

    sell: Terms
    buy: Terms
    expires: int
    memo: str | None
    min_fill: int | None = None
    window: int | None = None

    def price(self, amount: int) -> int:
        """What a take of ``amount`` of what this offer sells pays (:func:`fill_price`)."""
        return fill_price(self.sell.amount, self.buy.amount, amount)


def fill_price(sells: int, buys: int, amount: int) -> int:
    """The price of ``amount`` of an offer that sells ``sells`` for ``buys``: the offer's rate,
    rounded up, in the maker's favour: ``ceil(amount * buys / sells)``. Exact integers, so
    the whole offer (``amount == sells``) costs exactly ``buys``, and no part ever costs less
    than its share of the offer's price (docs/protocol.md §3, the price of a fill)."""
    return -(-amount * buys // sells)


@dataclass(frozen=True, slots=True)
class CancelBody:
    """Withdraw the owner's open offer ``offer`` (the offer entry's id)."""

    offer: str


@dataclass(frozen=True, slots=True)
class RecoverBody:
    """Make ``owner`` the chain's key, the current one being lost: signed by ``owner``, shown
    with the chain's KYC record, effective only after the chain's recovery delay."""

    owner: str


@dataclass(frozen=True, slots=True)
class CancelRecoveryBody:
    """The current owner refuses the pending recovery ``recovery`` (the recover entry's id)."""

    recovery: str


@dataclass(frozen=True, slots=True)
class TakeBody:
    """Take offer ``offer`` made at bank ``validator``: the taker gives ``sell`` and gets ``buy``.

    The taker signs the terms as well as the offer id, so what they agreed to pay is readable
    from their own chain without the offer.
    """

    offer: str
    validator: str
    sell: Terms
    buy: Terms


@dataclass(frozen=True, slots=True)
class LockBody:
    """Hold ``amount`` of ``asset`` for chain ``to`` at ``to_validator`` until ``expires``
    (ms): theirs if they show the preimage of ``hash`` before then, the payer's after
    (docs/adr/0008-hash-time-locks.md)."""

    to: str
    to_validator: str | None
    asset: UAI
    amount: int
    hash: str
    expires: int
    memo: str | None


@dataclass(frozen=True, slots=True)
class ClaimBody:
    """The payee of lock ``lock`` (the lock entry's id) claims it with ``preimage``: 32 bytes
    in hex whose plain SHA-256 is the lock's ``hash``."""

    lock: str
    preimage: str


@dataclass(frozen=True, slots=True)
class PlanBody:
    """The owner's consent to one hold of an execution plan (docs/protocol.md §14): hold
    ``amount`` of ``asset`` for instruction ``hold`` of plan ``plan`` (whose document has the
    digest ``digest``), to be paid to the address ``to`` (None: only ever released).

    Signed when the customer signs the plan, long before the hold, so its seq is 0 and it
    moves no seq (as a recover's); the offline verifier lets a chain use it once.
    """

    plan: str
    digest: str
    hold: int
    asset: UAI
    amount: int
    to: str | None


Body = (RegisterBody | PaymentBody | RedeemBody | RotateKeyBody | OfferBody | CancelBody
        | TakeBody | RecoverBody | CancelRecoveryBody | LockBody | ClaimBody | PlanBody)


def _parse_body(kind: str, body: Any) -> Body:
    if kind == "register":
        b = _obj(body, "register body", {"name", "owner", "kyc", "params"}, frozenset({"bank"}))
        check_public_key(b["owner"])
        if b["kyc"] is not None and not is_hex(b["kyc"], 64):
            raise EncodingError(f"kyc must be the hex SHA-256 of the KYC record or null, "
                                f"got {b['kyc']!r}")
        bank = None if "bank" not in b else parse_validator_name(b["bank"])
        return RegisterBody(_register_name(b["name"]), bank, b["owner"], b["kyc"],
                            parse_params(b["params"]))
    if kind in ("payment", "issue"):
        b = _obj(body, f"{kind} body", {"to", "asset", "amount"},
                 frozenset({"to_validator", "memo"} | (_ROUTE_FIELDS if kind == "payment"
                                                       else frozenset())))
        to_validator = b.get("to_validator")
        if to_validator is not None:
            parse_validator_name(to_validator)
        amount = parse_positive_amount(b["amount"])
        return PaymentBody(_chain_id(b["to"], "to"), to_validator, UAI.parse(b["asset"]),
                           amount, _memo(b), _route(b, to_validator, amount))
    if kind == "redeem":
        b = _obj(body, "redeem body", {"asset", "amount"}, frozenset({"memo"}))
        return RedeemBody(UAI.parse(b["asset"]), parse_positive_amount(b["amount"]), _memo(b))
    if kind == "rotate_key":
        b = _obj(body, "rotate_key body", {"owner"})
        check_public_key(b["owner"])
        return RotateKeyBody(b["owner"])
    if kind in ("offer", "take"):
        return _exchange_body(kind, body)
    if kind == "cancel":
        b = _obj(body, "cancel body", {"offer"})
        return CancelBody(_chain_id(b["offer"], "offer"))
    if kind == "recover":
        b = _obj(body, "recover body", {"owner"})
        check_public_key(b["owner"])
        return RecoverBody(b["owner"])
    if kind == "cancel_recovery":
        b = _obj(body, "cancel_recovery body", {"recovery"})
        return CancelRecoveryBody(_chain_id(b["recovery"], "recovery"))
    if kind in ("lock", "claim"):
        return _htlc_body(kind, body)
    if kind == "plan":
        b = _obj(body, "plan body", {"plan", "digest", "hold", "asset", "amount", "to"})
        if not isinstance(b["plan"], str) or not 1 <= len(b["plan"]) <= 300:
            raise EncodingError(f"plan must be a plan id, got {b['plan']!r}")
        if b["to"] is not None:
            parse_address(b["to"])
        hold = _int(b["hold"], "hold")
        if hold < 1:
            raise EncodingError(f"hold must be an instruction seq (from 1), got {hold}")
        return PlanBody(b["plan"], _chain_id(b["digest"], "digest"), hold,
                        UAI.parse(b["asset"]), parse_positive_amount(b["amount"]), b["to"])
    raise EncodingError(f"intent type {kind!r} is not supported by this validator yet")


def _htlc_body(kind: str, body: Any) -> LockBody | ClaimBody:
    if kind == "claim":
        b = _obj(body, "claim body", {"lock", "preimage"})
        if not is_hex(b["preimage"], 64):
            raise EncodingError(f"preimage must be 32 bytes in lowercase hex (64 characters), "
                                f"got {b['preimage']!r}")
        return ClaimBody(_chain_id(b["lock"], "lock"), b["preimage"])
    b = _obj(body, "lock body", {"to", "asset", "amount", "hash", "expires"},
             frozenset({"to_validator", "memo"}))
    to_validator = b.get("to_validator")
    if to_validator is not None:
        parse_validator_name(to_validator)
    if not is_hex(b["hash"], 64):
        raise EncodingError(f"hash must be a SHA-256 (64 lowercase hex), got {b['hash']!r}")
    return LockBody(_chain_id(b["to"], "to"), to_validator, UAI.parse(b["asset"]),
                    parse_positive_amount(b["amount"]), b["hash"], _int(b["expires"], "expires"),
                    _memo(b))


def _exchange_body(kind: str, body: Any) -> OfferBody | TakeBody:
    if kind == "offer":
        b = _obj(body, "offer body", {"sell", "buy", "expires"},
                 frozenset({"memo", "min_fill", "window"}))
    else:
        b = _obj(body, "take body", {"offer", "validator", "sell", "buy"})
    sell = Terms.from_dict(b["sell"], "sell")
    buy = Terms.from_dict(b["buy"], "buy")
    if sell.asset == buy.asset:
        raise EncodingError(f"an exchange sells and buys two different assets, got {sell.asset} "
                            "twice")
    if kind == "offer":
        min_fill = None
        if "min_fill" in b:
            min_fill = parse_positive_amount(b["min_fill"], "min_fill")
            if min_fill > sell.amount:
                raise EncodingError(f"min_fill {min_fill} is more than the offer sells "
                                    f"({sell.amount})")
        return OfferBody(sell, buy, _int(b["expires"], "expires"), _memo(b), min_fill,
                         _window(b))
    return TakeBody(_chain_id(b["offer"], "offer"), parse_validator_name(b["validator"]),
                    sell, buy)


def _window(body: dict[str, Any]) -> int | None:
    """An offer's selection window (ms), bounded so that takes wait neither for nothing nor
    for long: WINDOW_MIN_MS .. WINDOW_MAX_MS."""
    if "window" not in body:
        return None
    window = _int(body["window"], "window")
    if not WINDOW_MIN_MS <= window <= WINDOW_MAX_MS:
        raise EncodingError(f"window must be {WINDOW_MIN_MS}..{WINDOW_MAX_MS} ms, got {window}")
    return window


def _register_name(value: Any) -> str:
    # A bank's own chain registers under the bank's DNS name; customers under a plain name.
    try:
        return parse_name(value)
    except EncodingError:
        return parse_validator_name(value)


@dataclass(frozen=True, slots=True)
class SignedIntent:
    """What a chain's owner signs: ``{"intent": {...}, "sig"}``."""

    doc: dict[str, Any] = field(repr=False)
    type: str
    chain: str | None
    seq: int
    time: int
    body: Body
    sig: str
    digest: bytes = field(repr=False)
    raw: bytes = field(repr=False)

    @classmethod
    def from_dict(cls, doc: Any) -> SignedIntent:
        """Validate a signed intent's shape (not its signature: that needs the owner key),
        from any document: whatever in it is not protocol JSON is refused."""
        return cls._read(doc, canonical)

    @classmethod
    def trusted(cls, doc: Any) -> SignedIntent:
        """:meth:`from_dict` for a document known to be protocol JSON: out of
        :func:`parse` (which refused anything else), part of a document checked whole, or
        read back from our own store. Its shape is checked all the same; the walk that
        refuses what is not JSON is not made again."""
        return cls._read(doc, encode_built)

    @classmethod
    def _read(cls, doc: Any, encode: Callable[[Any], bytes]) -> SignedIntent:
        _obj(doc, "signed intent", {"intent", "sig"})
        intent = _obj(doc["intent"], "intent", {"type", "seq", "time", "body"},
                      frozenset({"chain"}))
        kind = intent["type"]
        if not isinstance(kind, str) or kind not in INTENT_TYPES:
            raise EncodingError(f"intent type must be one of {sorted(INTENT_TYPES)}, "
                                f"got {kind!r}")
        if kind == "register":
            chain = intent.get("chain")
            if chain is not None:
                raise EncodingError("a register intent has no chain (absent or null)")
        else:
            if "chain" not in intent:
                raise EncodingError(f"a {kind} intent must name its chain")
            chain = _chain_id(intent["chain"], "intent.chain")
        seq = _int(intent["seq"], "seq")
        time = _int(intent["time"], "time")
        body = _parse_body(kind, intent["body"])
        if not is_hex(doc["sig"], 128):
            raise EncodingError(f"sig must be 128 lowercase hex characters, got {doc['sig']!r}")
        intent_bytes = encode(intent)
        return cls(doc, kind, chain, seq, time, body, doc["sig"],
                   digest_canonical("intent", intent_bytes),
                   envelope("intent", intent_bytes, doc["sig"]))

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedIntent:
        return cls.trusted(parse(data))

    @property
    def id(self) -> str:
        """The intent id: its digest as ``intent``, independent of the signature bytes."""
        return self.digest.hex()

    def verify_ahead(self, owner: str) -> list[Ahead]:
        """The check :meth:`verify` (under ``owner``) will need, for keys.check_ahead: the
        HTTP shell verifies before the write transaction, and the rules inside it then cost
        no second verification."""
        return SIGNATURES.ahead(owner, self.digest, self.sig)

    def verify(self, owner: str) -> None:
        """Check the owner's signature (raises SignatureError); once (keys.SIGNATURES)."""
        SIGNATURES.verify(owner, self.digest, self.sig)


@dataclass(frozen=True, slots=True)
class Effect:
    """One balance and hold change an entry makes on one asset."""

    asset: str
    balance: int
    held: int

    def to_dict(self) -> dict[str, str]:
        return {"asset": self.asset, "balance": str(self.balance), "held": str(self.held)}

    def to_bytes(self) -> bytes:
        """Its canonical bytes."""
        return splice(self.to_dict())

    @classmethod
    def from_dict(cls, value: Any) -> Effect:
        e = _obj(value, "effect", {"asset", "balance", "held"})
        UAI.parse(e["asset"])
        return cls(e["asset"], parse_delta(e["balance"], "effect balance"),
                   parse_delta(e["held"], "effect held"))


@dataclass(frozen=True, slots=True)
class SignedEntry:
    """What a chain holds: ``{"entry": {...}, "sig"}``, signed by the chain's validator."""

    doc: dict[str, Any] = field(repr=False)
    chain: str | None
    height: int
    prev: str
    time: int
    kind: str
    intent: SignedIntent | None
    effects: tuple[Effect, ...]
    evidence: tuple[dict[str, Any], ...] = field(repr=False)
    validator: str
    sig: str
    digest: bytes = field(repr=False)
    raw: bytes = field(repr=False)
    # The evidence entries parsed, made once: a settle's evidence is read by the rules, the
    # state and the verifier in turn.
    _evidence: dict[int, SignedEntry] = field(default_factory=dict, init=False, compare=False,
                                              repr=False)

    def evidence_entry(self, index: int) -> SignedEntry:
        """Evidence item ``index`` parsed (it is part of this entry, so already checked).

        Raises:
            IndexError: there is no such item.
            EncodingError: the item is not a signed entry.
        """
        parsed = self._evidence.get(index)
        if parsed is None:
            parsed = self._evidence[index] = SignedEntry.trusted(self.evidence[index])
        return parsed

    @classmethod
    def from_dict(cls, doc: Any) -> SignedEntry:
        """Validate a signed entry's shape (not its signature: see :meth:`verify`), from any
        document; the intent inside is checked with the entry, once."""
        return cls._read(doc, canonical)

    @classmethod
    def trusted(cls, doc: Any) -> SignedEntry:
        """:meth:`from_dict` for a document known to be protocol JSON (see
        :meth:`SignedIntent.trusted`)."""
        return cls._read(doc, encode_built)

    @classmethod
    def _read(cls, doc: Any, encode: Callable[[Any], bytes]) -> SignedEntry:
        _obj(doc, "signed entry", {"entry", "sig"})
        e = _obj(doc["entry"], "entry", {"chain", "height", "prev", "time", "kind", "intent",
                                        "effects", "evidence", "validator"})
        kind = e["kind"]
        if not isinstance(kind, str) or kind not in ENTRY_KINDS:
            raise EncodingError(f"entry kind must be one of {sorted(ENTRY_KINDS)}, got {kind!r}")
        height = _int(e["height"], "height")
        chain = None if height == 0 and e["chain"] is None else _chain_id(e["chain"], "chain")
        if not is_hex(e["prev"], 64):
            raise EncodingError(f"prev must be an entry id (64 hex), got {e['prev']!r}")
        if not is_hex(e["validator"], 64):
            raise EncodingError(f"validator must be a public key (64 hex), got {e['validator']!r}")
        if not isinstance(e["effects"], list) or not isinstance(e["evidence"], list):
            raise EncodingError("effects and evidence must be lists")
        for item in e["evidence"]:
            _obj(item, "evidence item", {"entry", "sig"})
        if not is_hex(doc["sig"], 128):
            raise EncodingError(f"sig must be 128 lowercase hex characters, got {doc['sig']!r}")
        entry_bytes = encode(e)
        intent = None if e["intent"] is None else SignedIntent.trusted(e["intent"])
        return cls(doc, chain, height, e["prev"], _int(e["time"], "time"), kind, intent,
                   tuple(Effect.from_dict(x) for x in e["effects"]), tuple(e["evidence"]),
                   e["validator"], doc["sig"], digest_canonical("entry", entry_bytes),
                   envelope("entry", entry_bytes, doc["sig"]))

    @classmethod
    def sign(cls, key: SigningKey, *, chain: str | None, height: int, prev: str, time: int,
             kind: str, intent: SignedIntent | None, effects: tuple[Effect, ...],
             evidence: tuple[SignedEntry, ...]) -> SignedEntry:
        """Make and sign an entry from checked parts (this validator's own entries).

        Its canonical bytes are put together from the parts' own canonical bytes (the intent's
        and the evidence's ``raw``) by :func:`splice`, rather than by encoding the nested
        documents again; a verifier re-encodes the parsed entry and checks the signature over
        that, so any difference from RFC 8785 would fail every chain's verification.
        """
        validator = key.public_key
        effect_dicts = [e.to_dict() for e in effects]
        entry_bytes = splice({
            "chain": chain, "height": height, "prev": prev, "time": time, "kind": kind,
            "intent": None if intent is None else intent.raw,
            "effects": [e.to_bytes() for e in effects], "evidence": [e.raw for e in evidence],
            "validator": validator})
        entry_digest = digest_canonical("entry", entry_bytes)
        sig = key.sign_digest(entry_digest)
        raw = envelope("entry", entry_bytes, sig)
        evidence_docs = tuple(e.doc for e in evidence)
        doc = {"entry": {"chain": chain, "height": height, "prev": prev, "time": time,
                         "kind": kind, "intent": None if intent is None else intent.doc,
                         "effects": effect_dicts, "evidence": list(evidence_docs),
                         "validator": validator}, "sig": sig}
        signed = cls(doc, chain, height, prev, time, kind, intent, effects, evidence_docs,
                     validator, sig, entry_digest, raw)
        signed._evidence.update(enumerate(evidence))  # parsed already: never again
        return signed

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedEntry:
        return cls.trusted(parse(data))

    @property
    def id(self) -> str:
        """The entry id: its digest as ``entry``. A genesis entry's id is its chain's id."""
        return self.digest.hex()

    @property
    def chain_id(self) -> str:
        """The chain this entry belongs to (for the genesis, its own id)."""
        return self.chain if self.chain is not None else self.id

    def to_bytes(self) -> bytes:
        """The canonical bytes of the signed entry: what the store keeps and serves."""
        return self.raw

    def verify(self, validator: str | None = None) -> None:
        """Check the validator's signature (once, keys.SIGNATURES), and that it is
        ``validator``'s when given."""
        if validator is not None and self.validator != validator:
            raise SignatureError(f"entry is signed by {self.validator}, expected {validator}")
        SIGNATURES.verify(self.validator, self.digest, self.sig)

    def verify_ahead(self) -> list[Ahead]:
        """The check :meth:`verify` will need, for keys.check_ahead."""
        return SIGNATURES.ahead(self.validator, self.digest, self.sig)

    def verified(self) -> None:
        """Its signature is known valid (the very bytes we keep of our own entry): verify()
        is free from now on."""
        SIGNATURES.add((self.validator, self.digest, self.sig))
