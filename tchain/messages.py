"""Messages between validators: signed documents a bank sends a pinned peer, and the answers.

A message is ``{"message": {"type", "from", "to", "time", ...}, "sig"}``, signed by the sending
bank's key over ``digest("message", message)``; its id is that digest in hex. The HTTP request
that carries it is authenticated as well (PROTOCOL.md §7), but the message's own signature is
what makes it evidence: a peer's signed take, or its signed answers after a deadline, can be
shown to anyone, long after the request.

Requests and the answers they get (each answer is a message too, with ``ref`` = request id):

  transfer      hold, deadline, kyc_required   ->  credited (credit) | refused
  offer         offer                          ->  ack
  offer_closed  offer, entry                   ->  ack
  take          take, deadline                 ->  take_accepted (settlement, deadline) | refused
  settle        settlement                     ->  settled (settlement) | pending | refused
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tchain.digest import digest, digest_canonical
from tchain.encoding import encode_built
from tchain.errors import EncodingError, SignatureError
from tchain.keys import Ahead, SigningKey, is_hex, verify_digest
from tchain.model import SignedEntry
from tchain.values import parse_validator_name

__all__ = ["ANSWER_TYPES", "REQUEST_TYPES", "Message", "sign_message", "signed_message"]

_FIELDS: dict[str, frozenset[str]] = {
    "transfer": frozenset({"hold", "deadline", "kyc_required"}),
    "offer": frozenset({"offer"}),
    "offer_closed": frozenset({"offer", "entry"}),
    "take": frozenset({"take", "deadline"}),
    "settle": frozenset({"settlement"}),
    "ack": frozenset({"ref"}),
    "credited": frozenset({"ref", "credit"}),
    "refused": frozenset({"ref", "error", "reason"}),
    "take_accepted": frozenset({"ref", "settlement", "deadline"}),
    "settled": frozenset({"ref", "settlement"}),
    "pending": frozenset({"ref", "reason"}),
}
REQUEST_TYPES = frozenset({"transfer", "offer", "offer_closed", "take", "settle"})
ANSWER_TYPES = frozenset(_FIELDS) - REQUEST_TYPES
_ENTRY_FIELDS = ("hold", "offer", "entry", "take", "settlement", "credit")
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
    again for non-protocol JSON."""
    message = {"type": type_, "from": sender, "to": to, "time": time, **fields}
    unsigned = Message.from_dict({"message": message, "sig": _NO_SIG}, checked=True)
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
    digest: bytes = field(repr=False)
    # The keys its signature was found valid under (checked ahead of the write transaction).
    verified_under: set[str] = field(default_factory=set, repr=False, compare=False)

    @classmethod
    def from_dict(cls, doc: Any, *, checked: bool = False) -> Message:
        """Validate a signed message's shape (not its signature: see :meth:`verify`);
        ``checked`` as for :meth:`SignedEntry.from_dict` (a message this bank stored)."""
        if not isinstance(doc, dict) or set(doc) != {"message", "sig"}:
            raise EncodingError("a peer message is an object with exactly message and sig")
        m = doc["message"]
        if not isinstance(m, dict) or not isinstance(m.get("type"), str) \
                or m["type"] not in _FIELDS:
            raise EncodingError(f"message type must be one of {sorted(_FIELDS)}")
        want = _HEAD | _FIELDS[m["type"]]
        if set(m) != want:
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
        if m["type"] == "offer_closed" and not is_hex(m["offer"], 64):
            raise EncodingError(f"offer must be an offer id (64 hex), got {m['offer']!r}")
        if "kyc_required" in m and not isinstance(m["kyc_required"], bool):
            raise EncodingError("kyc_required must be true or false")
        for name in ("error", "reason"):
            if name in m and (not isinstance(m[name], str) or len(m[name]) > 1000):
                raise EncodingError(f"{name} must be a string of at most 1000 characters")
        if not is_hex(doc["sig"], 128):
            raise EncodingError("message sig must be 128 lowercase hex characters")
        # checks the whole message, entries included (unless the caller vouches for it)
        message_digest = digest_canonical("message", encode_built(m)) if checked else \
            digest("message", m)
        entries = {name: SignedEntry.from_dict(m[name], checked=True) for name in _ENTRY_FIELDS
                   if name in m and not (name == "offer" and m["type"] == "offer_closed")}
        fields = {k: v for k, v in m.items() if k not in _HEAD}
        return cls(doc, m["type"], m["from"], m["to"], m["time"], fields, entries,
                   message_digest)

    @property
    def id(self) -> str:
        return self.digest.hex()

    def verify(self, key: str) -> None:
        """Check the message is signed by ``key`` (raises SignatureError); once per key."""
        if key in self.verified_under:
            return
        try:
            verify_digest(key, self.digest, self.doc["sig"])
        except SignatureError as e:
            raise SignatureError(f"{self.type} message from {self.sender} is not signed by its "
                                 f"pinned key {key}") from e
        self.verified_under.add(key)

    def verify_ahead(self, key: str) -> list[Ahead]:
        """The checks :meth:`verify` (under ``key``) and the verify of each entry it carries
        will need, for keys.check_ahead."""
        mine: list[Ahead] = [] if key in self.verified_under else [
            ((key, self.digest, self.doc["sig"]), lambda: self.verified_under.add(key))]
        return mine + [check for entry in self.entries.values()
                       for check in entry.verify_ahead()]
