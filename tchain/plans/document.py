"""The execution plan document (docs/protocol.md §14): who takes part, what each bank does.

A plan is the general form of what an exchange does by hand across banks: an ordered list of
instructions (hold, transfer, release, await, issue), each assigned to one bank. Everything a
bank later does for the plan is checked against this document, and every signature of the
plan's log covers its digest, so the document is parsed strictly and refused whole on any
field we do not know (what we hash is what was signed).

Why addresses and not chain ids: the customer who writes the plan knows addresses
(``bob*bank2.example``), and each bank resolves only its own customers' addresses, so no bank
has to trust another's lookup before it approves.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tchain.digest import digest
from tchain.encoding import canonical, check_value, parse
from tchain.errors import EncodingError
from tchain.values import UAI, parse_address, parse_positive_amount, parse_validator_name

__all__ = ["MAX_INSTRUCTIONS", "OPS", "PLAN_TYPE", "ROLES", "Instruction", "Participant",
           "Plan", "plan_document", "plan_from_file", "plan_id"]

PLAN_TYPE = 106  # the resource type of an execution plan, after FinP2P's resource ids
OPS = frozenset({"hold", "transfer", "release", "await", "issue"})
ROLES = frozenset({"contributor", "observer"})
MAX_INSTRUCTIONS = 100
MAX_PARTICIPANTS = 16
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_FIELDS = frozenset({"id", "proposer", "time", "deadline", "participants", "instructions"})
# ``confirm``: true in every plan a bank proposes since docs/adr/0014 (a confirmation round
# before the first irreversible step); absent in the plans before it, which replay as they did
_OPTIONAL = frozenset({"confirm"})
_OP_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # required, optional
    "hold": (frozenset({"account", "asset", "amount"}), frozenset()),
    "transfer": (frozenset({"hold", "to"}), frozenset()),
    "release": (frozenset({"hold"}), frozenset()),
    "await": (frozenset(), frozenset({"until", "after"})),
    "issue": (frozenset({"account", "asset", "amount", "to"}), frozenset()),
}
_COMMON = frozenset({"seq", "bank", "op", "reversible"})
# What moves value out of a hold or into a chain: once one has run, nothing can be undone.
_IRREVERSIBLE = frozenset({"transfer", "release", "issue"})


def plan_id(bank: str, uid: uuid.UUID | None = None) -> str:
    """A new plan id, ``<bank>/106/<uuid4>``: the proposer's bank names it, so two banks
    never make the same id."""
    return f"{parse_validator_name(bank)}/{PLAN_TYPE}/{uid or uuid.uuid4()}"


def _parse_id(value: Any) -> str:
    if not isinstance(value, str):
        raise EncodingError(f"plan id must be a string <bank>/{PLAN_TYPE}/<uuid4>, got {value!r}")
    parts = value.split("/")
    if len(parts) != 3 or parts[1] != str(PLAN_TYPE) or not _UUID4.fullmatch(parts[2]):
        raise EncodingError(f"plan id must be <bank>/{PLAN_TYPE}/<uuid4> (lowercase), got "
                            f"{value!r}")
    parse_validator_name(parts[0])
    return value


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(f"{what} must be a JSON integer, got {value!r}")
    return value


def _exactly(value: Any, what: str, required: frozenset[str],
             optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EncodingError(f"{what} must be a JSON object, got {type(value).__name__}")
    missing = required - value.keys()
    unknown = value.keys() - required - optional
    if missing or unknown:
        raise EncodingError(f"{what} must have the fields {', '.join(sorted(required))}"
                            + (f" (and may have {', '.join(sorted(optional))})" if optional
                               else "") + f"; got {', '.join(sorted(value))}")
    return value


def _bank_of(address: str) -> str:
    return parse_address(address)[1]


@dataclass(frozen=True, slots=True)
class Participant:
    """A bank of the plan: a ``contributor`` executes and approves, an ``observer`` reads."""

    bank: str
    role: str


@dataclass(frozen=True, slots=True)
class Instruction:
    """One step of a plan, done by ``bank``.

    ``hold``: set ``amount`` of ``asset`` aside on ``account``'s chain, under the plan.
    ``transfer``: pay all that hold ``hold`` (a seq) holds to the address ``to``.
    ``release``: give hold ``hold`` back to its account.
    ``await``: wait ``until`` a time (ms) or ``after`` another instruction's completion.
    ``issue``: ``account``, the asset's issuer, issues ``amount`` of ``asset`` to ``to``.
    ``reversible``: whether a failure of it is compensated (every hold that stands is
    released) rather than a failure of the plan: true exactly for the holds and awaits
    before the first instruction that moves value out of a hold or into a chain.
    """

    seq: int
    bank: str
    op: str
    reversible: bool
    account: str | None = None
    asset: str | None = None
    amount: int | None = None
    hold: int | None = None
    to: str | None = None
    until: int | None = None
    after: int | None = None

    @classmethod
    def from_dict(cls, value: Any, index: int) -> Instruction:
        what = f"instruction {index + 1}"
        op = value.get("op") if isinstance(value, dict) else None
        if op not in OPS:
            raise EncodingError(f"{what}: op must be one of {sorted(OPS)}, got {op!r}")
        required, optional = _OP_FIELDS[op]
        d = _exactly(value, what, _COMMON | required, optional)
        if "until" in d and "after" in d:
            raise EncodingError(f"{what}: an await waits for exactly one of until or after")
        if not isinstance(d["reversible"], bool):
            raise EncodingError(f"{what}: reversible must be true or false")
        account = None if "account" not in d else _address(d["account"], f"{what} account")
        to = None if "to" not in d else _address(d["to"], f"{what} to")
        if op == "await" and not d.keys() & {"until", "after"}:
            raise EncodingError(f"{what}: an await waits for exactly one of until or after")
        return cls(_int(d["seq"], f"{what} seq"), parse_validator_name(d["bank"]), op,
                   d["reversible"], account,
                   None if "asset" not in d else str(UAI.parse(d["asset"])),
                   None if "amount" not in d else parse_positive_amount(d["amount"],
                                                                         f"{what} amount"),
                   None if "hold" not in d else _int(d["hold"], f"{what} hold"), to,
                   None if "until" not in d else _int(d["until"], f"{what} until"),
                   None if "after" not in d else _int(d["after"], f"{what} after"))

    @property
    def lands_at(self) -> str | None:
        """The bank where the value this instruction moves lands (its payee's, for a transfer
        or an issue), or None. That bank alone says whether it came in time, and its first
        word (it credited, or it never will) is final: docs/adr/0011."""
        return _bank_of(self.to) if self.op in ("transfer", "issue") and self.to else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"seq": self.seq, "bank": self.bank, "op": self.op,
                             "reversible": self.reversible}
        for name in ("account", "asset", "hold", "to", "until", "after"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        if self.amount is not None:
            d["amount"] = str(self.amount)
        return d


def _address(value: Any, what: str) -> str:
    try:
        parse_address(value)
    except EncodingError as e:
        raise EncodingError(f"{what}: {e.message}") from e
    return str(value)


@dataclass(frozen=True, slots=True)
class Plan:
    """A parsed, checked plan document. ``digest`` (hex) is what every signature of its log
    covers; ``doc`` the exact document it was read from."""

    doc: dict[str, Any] = field(repr=False)
    id: str
    proposer: str
    time: int
    deadline: int
    participants: tuple[Participant, ...]
    instructions: tuple[Instruction, ...]
    digest: str
    confirm: bool = False

    @property
    def first_irreversible(self) -> Instruction | None:
        """The first transfer, release or issue: what no compensation undoes. In a plan with
        ``confirm``, its bank decides alone whether it starts, once every contributor
        confirmed (docs/adr/0014)."""
        return next((i for i in self.instructions if not i.reversible), None)

    @property
    def bank(self) -> str:
        """The proposer's bank: it named the plan."""
        return self.id.split("/")[0]

    def role(self, bank: str) -> str | None:
        """``bank``'s role in the plan, None if it takes no part."""
        return next((p.role for p in self.participants if p.bank == bank), None)

    @property
    def contributors(self) -> tuple[str, ...]:
        return tuple(p.bank for p in self.participants if p.role == "contributor")

    @property
    def banks(self) -> tuple[str, ...]:
        return tuple(p.bank for p in self.participants)

    def instruction(self, seq: int) -> Instruction:
        return self.instructions[seq - 1]

    def signers(self, bank: str | None = None) -> tuple[str, ...]:
        """The accounts whose consent the plan needs (at ``bank``, or at all banks): every
        account a hold takes from or an issue issues from, since those are the funds that
        move; in the order they first appear."""
        out: list[str] = []
        for ins in self.instructions:
            if ins.account is not None and ins.account not in out and \
                    (bank is None or ins.bank == bank):
                out.append(ins.account)
        return tuple(out)

    def named(self, bank: str | None = None) -> tuple[str, ...]:
        """The addresses the plan names (at ``bank``): its proposer, accounts and payees."""
        out = [self.proposer] + [a for i in self.instructions for a in (i.account, i.to)
                                 if a is not None]
        return tuple(a for a in dict.fromkeys(out)
                     if bank is None or a.rpartition("*")[2] == bank)

    def holds(self, bank: str | None = None) -> tuple[Instruction, ...]:
        return tuple(i for i in self.instructions
                     if i.op == "hold" and (bank is None or i.bank == bank))

    def closer(self, hold: int) -> Instruction:
        """The transfer or release that ends hold ``hold`` (the document has exactly one)."""
        return next(i for i in self.instructions if i.hold == hold)

    @classmethod
    def from_dict(cls, value: Any) -> Plan:
        """Parse and check a plan document (docs/protocol.md §14).

        Raises:
            EncodingError: naming the first thing wrong.
        """
        d = _exactly(value, "plan", _FIELDS, _OPTIONAL)
        if d.get("confirm", True) is not True:
            raise EncodingError(f"plan confirm must be true when present, got {d['confirm']!r}")
        pid = _parse_id(d["id"])
        proposer = _address(d["proposer"], "plan proposer")
        time, deadline = _int(d["time"], "plan time"), _int(d["deadline"], "plan deadline")
        if deadline <= time:
            raise EncodingError(f"plan deadline {deadline} must be after its time {time}")
        participants = _participants(d["participants"])
        instructions = _instructions(d["instructions"])
        plan = cls(d, pid, proposer, time, deadline, participants, instructions,
                   digest("plan", d).hex(), "confirm" in d)
        _check(plan)
        return plan

    @classmethod
    def from_bytes(cls, data: bytes) -> Plan:
        return cls.from_dict(parse(data))

    def to_bytes(self) -> bytes:
        return canonical(self.doc)


def _participants(value: Any) -> tuple[Participant, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PARTICIPANTS:
        raise EncodingError(f"plan participants must be a list of 1 to {MAX_PARTICIPANTS}")
    out = []
    for i, item in enumerate(value):
        p = _exactly(item, f"participant {i + 1}", frozenset({"bank", "role"}))
        if p["role"] not in ROLES:
            raise EncodingError(f"participant {i + 1}: role must be one of {sorted(ROLES)}, "
                                f"got {p['role']!r}")
        out.append(Participant(parse_validator_name(p["bank"]), p["role"]))
    if len({p.bank for p in out}) != len(out):
        raise EncodingError("plan participants name a bank twice")
    return tuple(out)


def _instructions(value: Any) -> tuple[Instruction, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_INSTRUCTIONS:
        raise EncodingError(f"plan instructions must be a list of 1 to {MAX_INSTRUCTIONS}")
    out = tuple(Instruction.from_dict(item, i) for i, item in enumerate(value))
    for i, ins in enumerate(out):
        if ins.seq != i + 1:
            raise EncodingError(f"instruction {i + 1} has seq {ins.seq}: seqs are 1, 2, ... in "
                                "order")
    return out


def _check(plan: Plan) -> None:
    """The rules that tie a plan's parts together (docs/protocol.md §14)."""
    if plan.bank != _bank_of(plan.proposer):
        raise EncodingError(f"plan {plan.id} is named by {plan.bank}, but its proposer "
                            f"{plan.proposer} is a customer of {_bank_of(plan.proposer)}")
    contributors = set(plan.contributors)
    if plan.bank not in contributors:
        raise EncodingError(f"the proposer's bank {plan.bank} must be a contributor")
    holds: dict[int, Instruction] = {}
    closed: set[int] = set()
    moved = False
    for ins in plan.instructions:
        what = f"instruction {ins.seq} ({ins.op})"
        if ins.bank not in contributors:
            raise EncodingError(f"{what} is assigned to {ins.bank}, not a contributor")
        if ins.account is not None and _bank_of(ins.account) != ins.bank:
            raise EncodingError(f"{what}: {ins.account} is not a customer of {ins.bank}")
        if ins.to is not None and _bank_of(ins.to) not in contributors:
            raise EncodingError(f"{what} pays {ins.to}, whose bank is not a contributor")
        if ins.op == "hold":
            holds[ins.seq] = ins
        elif ins.op in ("transfer", "release"):
            hold = holds.get(ins.hold or 0)
            if hold is None:
                raise EncodingError(f"{what} names hold {ins.hold}, which is no earlier hold")
            if ins.hold in closed:
                raise EncodingError(f"{what}: hold {ins.hold} is already transferred or "
                                    "released")
            if hold.bank != ins.bank:
                raise EncodingError(f"{what} must be done by {hold.bank}, the hold's bank")
            closed.add(hold.seq)
        elif ins.op == "issue":
            assert ins.asset is not None and ins.account is not None
            if UAI.parse(ins.asset).issuer != ins.account:
                raise EncodingError(f"{what}: {ins.account} is not the issuer of {ins.asset}")
        elif ins.after is not None and not 1 <= ins.after < ins.seq:
            raise EncodingError(f"{what} waits after {ins.after}, which is no earlier "
                                "instruction")
        moved = moved or ins.op in _IRREVERSIBLE
        if ins.reversible == moved:
            raise EncodingError(f"{what} must have reversible {str(not moved).lower()}: the "
                                "holds and awaits before the first transfer, release or issue "
                                "are undone by releasing the holds; nothing after is")
    if set(holds) != closed:
        raise EncodingError(f"holds {sorted(set(holds) - closed)} are never transferred or "
                            "released: a plan must leave no hold open")


def plan_from_file(text: str, *, toml: bool) -> dict[str, Any]:
    """The plan file a customer writes, read (JSON or TOML: docs/protocol.md §14); it is
    checked when its bank makes it a plan (:func:`plan_document`).

    Raises:
        EncodingError: the file is not JSON or TOML of protocol values.
    """
    try:
        raw: Any = tomllib.loads(text) if toml else parse(text)
    except tomllib.TOMLDecodeError as e:
        raise EncodingError(f"the plan file is not TOML: {e}") from e
    check_value(raw)  # TOML has floats and dates, which no plan needs
    return dict(_exactly(raw, "plan file", frozenset({"participants", "instructions"}),
                         frozenset({"deadline", "deadline_in"})))


def plan_document(file: Any, *, plan_id_: str, proposer: str, time: int,
                  confirm: bool = False) -> dict[str, Any]:
    """The plan document a plan file describes. The file gives ``participants``,
    ``instructions`` and a ``deadline`` (ms) or a ``deadline_in`` (ms from ``time``); the
    proposer's bank adds the id, the proposer and the time. Each instruction's ``seq``,
    ``reversible`` and ``bank`` may be left out: they follow from the others (the bank of its
    account, or of its hold; the proposer's bank for an await). The result is checked by
    :meth:`Plan.from_dict`. A bank proposes with ``confirm`` (docs/adr/0014); without it the
    document is the one every plan had before (the golden vectors are made so).

    Raises:
        EncodingError: the file is not such a plan.
    """
    d = _exactly(file, "plan file", frozenset({"participants", "instructions"}),
                 frozenset({"deadline", "deadline_in"}))
    if len(d.keys() & {"deadline", "deadline_in"}) != 1:
        raise EncodingError("the plan file gives exactly one of deadline and deadline_in")
    deadline = d["deadline"] if "deadline" in d else time + _int(d["deadline_in"],
                                                                  "deadline_in")
    if not isinstance(d["instructions"], list):
        raise EncodingError("plan file instructions must be a list")
    instructions = [_filled(item, i, d["instructions"], _bank_of(proposer))
                    for i, item in enumerate(d["instructions"])]
    return {"id": plan_id_, "proposer": proposer, "time": time, "deadline": deadline,
            "participants": d["participants"], "instructions": instructions,
            **({"confirm": True} if confirm else {})}


def _filled(item: Any, index: int, all_: list[Any], home: str) -> dict[str, Any]:
    """An instruction of a plan file with what it may leave out filled in (an await with no
    account or hold is the proposer's bank's, ``home``)."""
    if not isinstance(item, Mapping):
        raise EncodingError(f"instruction {index + 1} must be an object")
    out = {"seq": index + 1, **item}
    if "bank" not in out:
        if isinstance(out.get("account"), str):
            out["bank"] = _bank_of(out["account"])
        elif isinstance(out.get("hold"), int) and 1 <= out["hold"] <= len(all_) and \
                isinstance(all_[out["hold"] - 1], Mapping) and \
                isinstance(all_[out["hold"] - 1].get("account"), str):
            out["bank"] = _bank_of(all_[out["hold"] - 1]["account"])
        else:
            out["bank"] = home
    if "reversible" not in out:
        out["reversible"] = not any(isinstance(x, Mapping) and x.get("op") in _IRREVERSIBLE
                                    for x in all_[:index + 1])
    return out
