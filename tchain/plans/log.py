"""The signed documents of a plan's log (docs/protocol.md §14), after FinP2P's
Propose / Approve / Reject.

``{"log": {"type", "plan", "digest", "by", "time", ...type fields...}, "sig"}`` (a
``confirmation``'s one field is ``seq``: tchain.plans.confirmation), signed as
``plan`` by the bank ``by``. ``digest`` is the plan document's digest, so a signature never
carries over to another plan, nor to another version of the same id. A log document's id is
``hex(digest("plan", log))``: approvals and rejections of a completion name it.

A customer's consent is not a log document but a signed ``plan`` intent (tchain.model.PlanBody),
one per hold of theirs, since it is what their chain's hold entry carries; it reaches the other
banks inside its bank's ``approval``, beside that bank's signed key records of the chains the
plan names there, so every participant checks the customer's signature itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tchain.digest import digest_canonical
from tchain.encoding import canonical, envelope, parse
from tchain.errors import EncodingError
from tchain.keys import SIGNATURES, SigningKey, is_hex
from tchain.model import SignedEntry, SignedIntent
from tchain.records import KeyRecord
from tchain.values import parse_validator_name

__all__ = ["LOG_TYPES", "LogDoc", "sign_log"]

_FIELDS: dict[str, frozenset[str]] = {
    "proposal": frozenset({"document"}),
    "approval": frozenset({"consents", "records"}),
    "rejection": frozenset({"error", "reason"}),
    "completion": frozenset({"seq", "status", "receipts", "error"}),
    "completion_approval": frozenset({"seq", "completion"}),
    "completion_rejection": frozenset({"seq", "completion", "error", "reason"}),
    "compensation": frozenset({"receipts"}),
    "confirmation": frozenset({"seq"}),  # docs/adr/0014
}
LOG_TYPES = frozenset(_FIELDS)
_HEAD = frozenset({"type", "plan", "digest", "by", "time"})
STATUSES = frozenset({"done", "failed"})
MAX_REASON = 512


@dataclass(frozen=True, slots=True)
class LogDoc:
    """A parsed signed log document (its signature checked by :meth:`verify`)."""

    doc: dict[str, Any] = field(repr=False)
    type: str
    plan: str
    plan_digest: str
    by: str
    time: int
    body: dict[str, Any] = field(repr=False)
    sig: str
    digest: bytes = field(repr=False)

    @property
    def id(self) -> str:
        return self.digest.hex()

    @property
    def raw(self) -> bytes:
        """Its canonical bytes, kept and repeated as they are."""
        return envelope("log", canonical(self.doc["log"]), self.sig)

    def receipts(self) -> tuple[SignedEntry, ...]:
        """The signed entries a completion or compensation carries."""
        return tuple(SignedEntry.from_dict(r) for r in self.body.get("receipts", ()))

    def consents(self) -> tuple[SignedIntent, ...]:
        """An approval's consents: its customers' signed plan intents."""
        return tuple(SignedIntent.from_dict(c) for c in self.body["consents"])

    def records(self) -> tuple[KeyRecord, ...]:
        """An approval's key records of the chains the plan names at the approving bank."""
        return tuple(KeyRecord.from_dict(r) for r in self.body["records"])

    def verify(self, key: str) -> None:
        """Check the signature is ``key``'s (raises SignatureError); once (keys.SIGNATURES)."""
        SIGNATURES.verify(key, self.digest, self.sig)

    @classmethod
    def from_bytes(cls, data: bytes) -> LogDoc:
        return cls.from_dict(parse(data))

    @classmethod
    def from_dict(cls, doc: Any) -> LogDoc:
        """Check a signed log document's shape (not its signature, nor whether it fits the
        plan: see tchain.plans.execution).

        Raises:
            EncodingError: naming what is wrong.
        """
        if not isinstance(doc, dict) or set(doc) != {"log", "sig"}:
            raise EncodingError("a plan log document is an object with exactly log and sig")
        log = doc["log"]
        kind = log.get("type") if isinstance(log, dict) else None
        if kind not in _FIELDS:
            raise EncodingError(f"plan log type must be one of {sorted(_FIELDS)}, got {kind!r}")
        if set(log) != _HEAD | _FIELDS[kind]:
            raise EncodingError(f"a {kind} has exactly the fields "
                                f"{', '.join(sorted(_HEAD | _FIELDS[kind]))}")
        if not is_hex(log["digest"], 64) or not is_hex(doc["sig"], 128):
            raise EncodingError("a plan log document's digest is 64 hex and its sig 128 hex")
        if not isinstance(log["time"], int) or isinstance(log["time"], bool):
            raise EncodingError(f"a plan log time is an integer (ms), got {log['time']!r}")
        if not isinstance(log["plan"], str):
            raise EncodingError("a plan log document names its plan by id")
        parse_validator_name(log["by"])
        _check_body(kind, log)
        return cls(doc, kind, log["plan"], log["digest"], log["by"], log["time"],
                   {k: log[k] for k in _FIELDS[kind]}, doc["sig"],
                   digest_canonical("plan", canonical(log)))


def _check_body(kind: str, log: dict[str, Any]) -> None:
    if kind in ("rejection", "completion_rejection") and (
            not isinstance(log["error"], str) or not isinstance(log["reason"], str)
            or len(log["reason"]) > MAX_REASON):
        raise EncodingError(f"a {kind} has an error code and a reason of at most "
                                f"{MAX_REASON} characters")
    if kind in ("completion", "completion_approval", "completion_rejection",
                "confirmation") and (
            not isinstance(log["seq"], int) or isinstance(log["seq"], bool) or log["seq"] < 1):
        raise EncodingError(f"a {kind} names its instruction by seq (an integer from 1)")
    if kind in ("completion_approval", "completion_rejection") and \
            not is_hex(log["completion"], 64):
        raise EncodingError(f"a {kind} names the completion it decides by id (64 hex)")
    if kind == "completion":
        if log["status"] not in STATUSES:
            raise EncodingError(f"a completion's status is one of {sorted(STATUSES)}")
        if (log["status"] == "failed") != isinstance(log["error"], str) or \
                (log["error"] is not None and not isinstance(log["error"], str)):
            raise EncodingError("a failed completion has an error code, a done one null")
    if kind in ("completion", "compensation"):
        if not isinstance(log["receipts"], list) or len(log["receipts"]) > 100:
            raise EncodingError(f"a {kind}'s receipts are a list of signed entries")
        for r in log["receipts"]:
            SignedEntry.from_dict(r)
    if kind == "approval":
        if not isinstance(log["consents"], list) or not isinstance(log["records"], list) or \
                len(log["consents"]) > 100 or len(log["records"]) > 100:
            raise EncodingError("an approval carries its customers' consents (signed plan "
                                "intents) and its key records of the chains the plan names")
        for c in log["consents"]:
            if SignedIntent.from_dict(c).type != "plan":
                raise EncodingError("an approval's consents are signed plan intents")
        for r in log["records"]:
            KeyRecord.from_dict(r)
    if kind == "proposal" and not isinstance(log["document"], dict):
        raise EncodingError("a proposal carries the plan document")


def sign_log(key: SigningKey, type_: str, *, plan: str, plan_digest: str, by: str, time: int,
             **fields: Any) -> LogDoc:
    """Make and sign a log document, checked as a peer would check it (never send what it
    would refuse)."""
    log = {"type": type_, "plan": plan, "digest": plan_digest, "by": by, "time": time,
           **{k: (v.doc if isinstance(v, SignedEntry | SignedIntent | KeyRecord) else
                  [x.doc if isinstance(x, SignedEntry | SignedIntent | KeyRecord) else x
                   for x in v]
                  if isinstance(v, list | tuple) else v)
              for k, v in fields.items()}}
    return LogDoc.from_dict({"log": log, "sig": key.sign("plan", log)})
