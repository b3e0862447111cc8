"""Messages between validators: signed documents a bank sends a pinned peer, and the answers.

A message is ``{"message": {"type", "from", "to", "time", ...}, "sig"}``, signed by the sending
bank's key over ``digest("message", message)``; its id is that digest in hex. The HTTP request
that carries it is authenticated as well (PROTOCOL.md §7), but the message's own signature is
what makes it evidence: a peer's signed take, or its signed answers after a deadline, can be
shown to anyone, long after the request.

``payer`` and ``taker`` are the sending bank's signed key records (tchain.records) of the chain
whose owner signed the intent inside the hold or the take: the receiver checks that signature
with the key the record names, so a bank cannot pass off an intent nobody signed.

Requests and the answers they get (each answer is a message too, with ``ref`` = request id):

  transfer      hold, payer, deadline,         ->  credited (credit; next from a correspondent)
                                                   | pending | refused
                kyc_required
  offer         offer                          ->  ack
  offer_closed  offer, entry                   ->  ack
  offer_filled  offer, entry, remaining        ->  ack   (entry: the maker's signed fill)
  take          take, taker, deadline          ->  take_accepted (settlement, deadline) | refused
  settle        settlement                     ->  settled (settlement) | pending | refused
  lock          lock, locker, deadline         ->  ack | refused   (hash-time locks, tchain.htlc)
  claimed       claim, claimant                ->  ack | refused
  lock_status   lock                           ->  lock_claimed (lock, claim, claimant)
                                                   | lock_expired (lock) | refused
  plan          log                            ->  ack | refused   (log: a plan's signed log)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tchain.digest import digest_canonical
from tchain.encoding import check_value, envelope, splice
from tchain.errors import EncodingError, SignatureError
from tchain.keys import SIGNATURES, Ahead, SigningKey, is_hex
from tchain.model import SignedEntry
from tchain.records import KeyRecord
from tchain.values import parse_positive_amount, parse_validator_name

__all__ = ["ANSWER_TYPES", "REQUEST_TYPES", "Message", "sign_message", "signed_message"]

_FIELDS: dict[str, frozenset[str]] = {
    "transfer": frozenset({"hold", "payer", "deadline", "kyc_required"}),
    "offer": frozenset({"offer"}),
    "offer_closed": frozenset({"offer", "entry"}),
    "offer_filled": frozenset({"offer", "entry", "remaining"}),
    "take": frozenset({"take", "taker", "deadline"}),
    "settle": frozenset({"settlement"}),
    "plan": frozenset({"log"}),
    "ack": frozenset({"ref"}),
    "credited": frozenset({"ref", "credit"}),
    "refused": frozenset({"ref", "error", "reason"}),
    "take_accepted": frozenset({"ref", "settlement", "deadline"}),
    "settled": frozenset({"ref", "settlement"}),
    "pending": frozenset({"ref", "reason"}),
    "lock": frozenset({"lock", "locker", "deadline"}),
    "claimed": frozenset({"claim", "claimant"}),
    "lock_status": frozenset({"lock"}),
    "lock_claimed": frozenset({"ref", "lock", "claim", "claimant"}),
    "lock_expired": frozenset({"ref", "lock"}),
}
# Fields a message may carry beyond its own: a correspondent's ``credited`` names the bank it
# handed the payment on to and that bank's key, as it pinned it (docs/adr/0015).
_OPTIONAL: dict[str, frozenset[str]] = {"credited": frozenset({"next"})}
REQUEST_TYPES = frozenset({"transfer", "offer", "offer_closed", "offer_filled", "take",
                           "settle", "lock", "claimed", "lock_status", "plan"})
_NEWS_OF_AN_OFFER = frozenset({"offer_closed", "offer_filled"})  # ``offer`` is its id
_LOCK_BY_ID = frozenset({"lock_claimed", "lock_expired"})  # ``lock`` is its id
ANSWER_TYPES = frozenset(_FIELDS) - REQUEST_TYPES
_ENTRY_FIELDS = ("hold", "offer", "entry", "take", "settlement", "credit", "lock", "claim")
# The key record of the owner who signed the intent inside an entry field: by its field.
SIGNERS = {"payer": "hold", "taker": "take", "locker": "lock", "claimant": "claim"}
_HEAD = frozenset({"type", "from", "to", "time"})


def sign_message(key: SigningKey, type_: str, sender: str, to: str, time: int,
                 **fields: Any) -> dict[str, Any]:
    """A signed message ``{"message": {...}, "sig"}`` from bank ``sender`` to bank ``to``."""
    return signed_message(key, type_, sender, to, time, **fields).doc


def signed_message(key: SigningKey, type_: str, sender: str, to: str, time: int,
                   **fields: Any) -> Message:
    """:func:`sign_message`, parsed: its shape checked as a peer would check it (never send
    what it would refuse), and signed over the digest that check made. Its values are this
    bank's own (entries it parsed or signed, its clock, its words), so they are not walked
    again for non-protocol JSON. An entry may be given as the :class:`SignedEntry` itself,
    and a key record as the :class:`KeyRecord`: it is then not parsed again (an entry's
    canonical bytes are spliced in)."""
    known = {name: value for name, value in fields.items()
             if isinstance(value, SignedEntry | KeyRecord)}
    message = {"type": type_, "from": sender, "to": to, "time": time,
               **{name: value.doc if isinstance(value, SignedEntry | KeyRecord) else value
                  for name, value in fields.items()}}
    unsigned = Message._read({"message": message, "sig": _NO_SIG}, trusted=True, known=known)
    signed = {"message": message, "sig": key.sign_digest(unsigned.digest)}
    return replace(unsigned, doc=signed)


_NO_SIG = "0" * 128  # stands in for the signature while the message is checked


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed signed message; entries it carries are parsed (not yet signature-checked)."""

    doc: dict[str, Any] = field(repr=False)
    type: str
    sender: str
    to: str
    time: int
    fields: dict[str, Any] = field(repr=False)
    entries: dict[str, SignedEntry] = field(repr=False)
    records: dict[str, KeyRecord] = field(repr=False)  # by field: payer, taker
    digest: bytes = field(repr=False)
    body: bytes = field(repr=False)  # the canonical bytes of doc["message"]

    @classmethod
    def from_dict(cls, doc: Any) -> Message:
        """Validate a signed message's shape (not its signature: see :meth:`verify`), from
        any document."""
        return cls._read(doc, trusted=False)

    @classmethod
    def trusted(cls, doc: Any) -> Message:
        """:meth:`from_dict` for a document known to be protocol JSON (out of
        :func:`tchain.encoding.parse`, or a message this bank stored; see
        :meth:`SignedEntry.trusted`)."""
        return cls._read(doc, trusted=True)

    @classmethod
    def _read(cls, doc: Any, *, trusted: bool,
              known: Mapping[str, SignedEntry | KeyRecord] | None = None) -> Message:
        """The message, with the entries in ``known`` already parsed (signed_message).

        The message's canonical bytes are put together from its fields' own by
        :func:`splice`: each entry's ``raw`` (made when it was parsed) and each other value.
        So the entries, most of a message's bytes, are encoded once, when parsed, not again
        inside the message.
        """
        if not isinstance(doc, dict) or set(doc) != {"message", "sig"}:
            raise EncodingError("a peer message is an object with exactly message and sig")
        m = doc["message"]
        if not isinstance(m, dict) or not isinstance(m.get("type"), str) \
                or m["type"] not in _FIELDS:
            raise EncodingError(f"message type must be one of {sorted(_FIELDS)}")
        want = _HEAD | _FIELDS[m["type"]]
        if not want <= set(m) <= want | _OPTIONAL.get(m["type"], frozenset()):
            raise EncodingError(f"a {m['type']} message has exactly the fields "
                                f"{', '.join(sorted(want))}; got {', '.join(sorted(m))}")
        parse_validator_name(m["from"])
        parse_validator_name(m["to"])
        for name in ("time", "deadline"):
            if name in m and (not isinstance(m[name], int) or isinstance(m[name], bool)
                              or m[name] < 0):
                raise EncodingError(f"message {name} must be a time in ms, got {m[name]!r}")
        if "ref" in m and not is_hex(m["ref"], 64):
            raise EncodingError(f"ref must be a message id (64 hex), got {m['ref']!r}")
        if m["type"] in _NEWS_OF_AN_OFFER and not is_hex(m["offer"], 64):
            raise EncodingError(f"offer must be an offer id (64 hex), got {m['offer']!r}")
        if m["type"] in _LOCK_BY_ID and not is_hex(m["lock"], 64):
            raise EncodingError(f"lock must be a lock id (64 hex), got {m['lock']!r}")
        if "next" in m and (not isinstance(m["next"], dict) or set(m["next"]) != {"name", "key"}
                            or not is_hex(m["next"]["key"], 64)):
            raise EncodingError("next must be {name, key}: a bank name and its 64-hex key")
        if "next" in m:
            parse_validator_name(m["next"]["name"])
        if "remaining" in m:
            parse_positive_amount(m["remaining"], "remaining")
        if "kyc_required" in m and not isinstance(m["kyc_required"], bool):
            raise EncodingError("kyc_required must be true or false")
        for name in ("error", "reason"):
            if name in m and (not isinstance(m[name], str) or len(m[name]) > 1000):
                raise EncodingError(f"{name} must be a string of at most 1000 characters")
        if not is_hex(doc["sig"], 128):
            raise EncodingError("message sig must be 128 lowercase hex characters")
        known = known or {}
        read_entry = SignedEntry.trusted if trusted else SignedEntry.from_dict
        entries = {name: entry if isinstance(entry := known.get(name), SignedEntry) else
                   read_entry(m[name])
                   for name in _ENTRY_FIELDS
                   if name in m and not (name == "offer" and m["type"] in _NEWS_OF_AN_OFFER)
                   and not (name == "lock" and m["type"] in _LOCK_BY_ID)}
        records = {name: record if isinstance(record := known.get(name), KeyRecord) else
                   KeyRecord.from_dict(m[name]) for name in SIGNERS if name in m}
        # every value checked: the entries by their parse, the others here
        if not trusted:
            for name in sorted(m):
                if name not in entries and type(m[name]) is not str:
                    check_value(m[name])
        body = splice({name: entries[name].raw if name in entries else value
                       for name, value in m.items()})
        fields = {k: v for k, v in m.items() if k not in _HEAD}
        return cls(doc, m["type"], m["from"], m["to"], m["time"], fields, entries, records,
                   digest_canonical("message", body), body)

    @property
    def id(self) -> str:
        return self.digest.hex()

    @property
    def raw(self) -> bytes:
        """The canonical bytes of the signed message."""
        return envelope("message", self.body, self.doc["sig"])

    def verify(self, key: str) -> None:
        """Check the message is signed by ``key`` (raises SignatureError); once
        (keys.SIGNATURES)."""
        try:
            SIGNATURES.verify(key, self.digest, self.doc["sig"])
        except SignatureError as e:
            raise SignatureError(f"{self.type} message from {self.sender} is not signed by its "
                                 f"pinned key {key}") from e

    def verify_ahead(self, key: str) -> list[Ahead]:
        """The checks :meth:`verify` (under ``key``) and the verify of each entry it carries
        will need, for keys.check_ahead."""
        mine = SIGNATURES.ahead(key, self.digest, self.doc["sig"])
        signers = [check for name, record in self.records.items()
                   for check in record.verify_ahead(key) + _intent_ahead(
                       self.entries.get(SIGNERS[name]), record.owner)]
        return mine + signers + [check for entry in self.entries.values()
                                 for check in entry.verify_ahead()]


def _intent_ahead(entry: SignedEntry | None, owner: str) -> list[Ahead]:
    """The check of the customer's intent inside ``entry`` under the key its record names."""
    if entry is None or entry.intent is None:
        return []
    return entry.intent.verify_ahead(owner)
