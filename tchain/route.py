"""Payments through correspondent banks: a chain of holds, the payee's bank decides, every hop
mirrors its next hop's first answer (docs/adr/0015-correspondent-routes.md, docs/protocol.md
§11 "Routes").

The payer signs a payment that names its route (``via``) and the least the payee must get
(``receive``). Each correspondent holds on its own bank chain what it hands on, in a payment
of its own whose ``forward`` names the hold it received and carries it as evidence; so the
payee's bank sees, nested, every hold back to the payer's signed intent. When the next bank
credits, a correspondent settles its hold and credits its own chain with what it received,
carrying both the hold it received and the credit it got: its receipt to the bank before it.

Everything here is pure: what a route looks like, what each bank checks of the holds a peer
sends along it, and the entries a correspondent signs. The engine (validator/route.py) loads,
asks, writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from tchain.digest import sha256_hex
from tchain.errors import (
    BadRequestError,
    EncodingError,
    InsufficientFundsError,
    MisconductError,
    RouteRefusedError,
    SignatureError,
    VerificationError,
)
from tchain.intents import sign_intent
from tchain.model import Effect, PaymentBody, SignedEntry, SignedIntent
from tchain.route_checks import check_along, check_signed_key
from tchain.rules import BankIdentity, Outcome, next_entry
from tchain.state import ChainState, available, entry_effects
from tchain.values import UAI, parse_amount, parse_validator_name

__all__ = ["Terms", "check_nested", "check_route", "check_route_credit", "forward_hold",
           "hops_of", "is_routed", "next_hop", "origin", "parse_next", "route_credit",
           "route_subject", "routed_body"]


@dataclass(frozen=True, slots=True)
class Terms:
    """A correspondent's published terms (its well-known document's ``correspondent``): the
    IOUs it takes at par, the IOU it hands on, the fee it keeps (minor units, per hop), and,
    optionally, ``limit``: the most of any one peer's IOU it will hold, so a lying bank before
    it cannot run up an unbounded liability of its own (attack 13, Finding 7)."""

    accept: tuple[str, ...]
    pay: str
    fee: int
    limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"accept": list(self.accept), "pay": self.pay, "fee": str(self.fee)}
        return out if self.limit is None else {**out, "limit": str(self.limit)}

    @classmethod
    def from_dict(cls, d: Any) -> Terms:
        if not isinstance(d, dict) or not {"accept", "pay", "fee"} <= set(d) <= \
                {"accept", "pay", "fee", "limit"} or not isinstance(d["accept"], list):
            raise EncodingError("correspondent terms are {accept: [UAI...], pay: UAI, fee, "
                                "limit?}")
        assets = [UAI.parse(a) for a in (*d["accept"], d["pay"])]
        if not all(a.is_bank_iou for a in assets):
            raise EncodingError("a correspondent takes and pays banks' IOUs, not a customer's")
        accept = tuple(str(a) for a in assets[:-1])
        limit = None if "limit" not in d else parse_amount(d["limit"], "limit")
        return cls(accept, str(assets[-1]), parse_amount(d["fee"], "fee"), limit)

    def check_limit(self, peer: str, asset: str, holding: int) -> None:
        """Would we hold ``holding`` of ``peer``'s IOU ``asset`` (what we hold, what flows
        still open bring, and this payment) within our ``limit``?

        Raises:
            RouteRefusedError: past it.
        """
        if self.limit is not None and UAI.parse(asset).issuer_validator == peer and \
                holding > self.limit:
            raise RouteRefusedError(f"this correspondent holds at most {self.limit} of "
                                    f"{asset}; this payment would take it to {holding}")

    def hands_on(self, asset: str, amount: int) -> int:
        """What we hand on for ``amount`` of ``asset`` received.

        Raises:
            RouteRefusedError: we do not take that asset, or the fee eats it all.
        """
        if asset not in self.accept:
            takes = ", ".join(self.accept) or "nothing"
            raise RouteRefusedError(f"this correspondent takes {takes} at par, not {asset}")
        if UAI.parse(self.pay).code != UAI.parse(asset).code:
            raise RouteRefusedError(f"this correspondent pays {self.pay}: a route changes no "
                                    f"asset code, and it was paid {asset}")
        if amount <= self.fee:
            raise RouteRefusedError(f"{amount} {asset} does not cover the fee {self.fee}")
        return amount - self.fee


def routed_body(entry: SignedEntry) -> PaymentBody | None:
    """The payment body of a hold that goes along a route, or None."""
    body = entry.intent.body if entry.intent is not None else None
    return body if isinstance(body, PaymentBody) and body.route is not None else None


def is_routed(entry: SignedEntry) -> bool:
    return routed_body(entry) is not None


def next_hop(body: PaymentBody) -> str:
    """The bank a hold of ``body`` goes to: the first correspondent still ahead, or the
    payee's bank."""
    assert body.to_validator is not None
    return body.route.via[0] if body.route is not None and body.route.via else body.to_validator


def hops_of(hold: SignedEntry) -> list[SignedEntry]:
    """The holds along a route up to ``hold``: ``hold`` first, the payer's last (each
    correspondent's hold carries the one it forwards as its only evidence)."""
    out = [hold]
    while (body := routed_body(out[-1])) is not None and body.route is not None and \
            body.route.forward is not None:
        if len(out) > 8 or len(out[-1].evidence) != 1:
            raise _bad(f"a forwarding hold carries the hold it forwards, got "
                       f"{len(out[-1].evidence)} entries")
        try:
            out.append(out[-1].evidence_entry(0))
        except EncodingError as e:
            raise _bad(f"the hold it forwards is not an entry: {e.message}") from e
    return out


def origin(hold: SignedEntry) -> SignedEntry:
    """The payer's own hold at the start of the route ``hold`` belongs to."""
    return hops_of(hold)[-1]


def route_subject(hold: SignedEntry, sender: str) -> str:
    """What a routed hold asks to be credited once, whatever message carries it: its payer's
    intent as handed on by ``sender`` (its route names one bank that may hand it to us; what
    any other sends is refused, and its refusal must not answer that bank's true one)."""
    try:
        first = origin(hold)
    except MisconductError:  # (refused with its message)
        first = hold
    assert first.intent is not None
    return sha256_hex(f"{first.intent.id} from {sender}".encode())


def _bad(what: str) -> MisconductError:
    return MisconductError.of(BadRequestError(what))


def check_route(hold: SignedEntry, sender: str, receiver: str, receiver_key: str | None = None
                ) -> PaymentBody:
    """Check the route a peer's hold carries, as if it lied (docs/protocol.md §13 "Routes"):
    every hold back to the payer's is a signed payment to the same payee, each
    correspondent's forwards the one before it (its evidence, its id), was sent to the bank
    that signed the next, hands on no more than it got, and the hops left shrink by one; the
    hold ``sender`` sent us is for ``receiver``, whose key (``receiver_key``, when the receiver
    checks; a proof checker knows only the message) the payer signed; and every hop fits the
    payer's signed route (tchain.route_checks). Returns the payer's body (its ``receive``).

    Raises:
        MisconductError: a route no honest bank sends (bad_request, bad_signature).
    """
    holds = hops_of(hold)
    bodies = []
    for index, entry in enumerate(holds):
        body = routed_body(entry) if entry.kind == "payment" else None
        if body is None or body.route is None:
            raise _bad(f"hold {entry.id} along the route is not a routed payment")
        if entry.effects != (Effect(str(body.asset), 0, body.amount),):
            raise _bad(f"hold {entry.id} does not hold exactly what it pays")
        assert entry.intent is not None  # (a routed body is an intent's)
        if entry.intent.chain != entry.chain:
            raise _bad(f"hold {entry.id} carries an intent for another chain")
        if body.route.forward is None and entry.evidence:  # (attack 15: carried, unchecked)
            raise _bad(f"the payer's hold {entry.id} carries evidence; a payer's hold has none")
        try:
            if index > 0:  # ours was checked by the caller with the peer's pinned key
                entry.verify()
            if body.route.forward is not None and entry.intent is not None:
                entry.intent.verify(entry.validator)  # a bank chain: its bank's key owns it
        except SignatureError as e:  # (ours too: not the key a payer record names, attack 13)
            raise MisconductError.of(e) from e
        bodies.append(body)
    first = bodies[-1]
    if first.route is None or first.route.receive is None:
        raise _bad("the route does not start at a payer's hold with via and receive")
    if next_hop(bodies[0]) != receiver:
        raise _bad(f"the hold goes to {next_hop(bodies[0])}, not to {receiver}")
    if len(bodies) > 1 and next_hop(bodies[1]) != sender:
        raise _bad(f"{sender} hands on a hold that was sent to {next_hop(bodies[1])}")
    for down, up in pairwise(bodies):
        assert down.route is not None and up.route is not None
        if (down.to, down.to_validator) != (up.to, up.to_validator):
            raise _bad(f"a correspondent pays {down.to} at {down.to_validator}, the hold it "
                       f"forwards {up.to} at {up.to_validator}")
        if down.route.via != up.route.via[1:]:
            raise _bad(f"a correspondent's hops {list(down.route.via)} are not those left of "
                       f"{list(up.route.via)}")
        if down.amount > up.amount:
            raise _bad(f"a correspondent hands on {down.amount}, more than the {up.amount} "
                       "it got")
    for down_entry, up_entry in pairwise(holds):
        down_body = routed_body(down_entry)
        assert down_body is not None and down_body.route is not None
        if down_body.route.forward != up_entry.id:
            raise _bad(f"a correspondent's hold forwards {down_body.route.forward}, carries "
                       f"{up_entry.id}")
    if bodies[0].amount < first.route.receive:
        raise _bad(f"the payee would get {bodies[0].amount}, less than the {first.route.receive}"
                   " its payer signed for")
    if receiver_key is not None:
        check_signed_key(first, receiver, receiver_key)
    check_along(holds, bodies)
    return first


def check_nested(hold: SignedEntry) -> None:
    """The offline verifier's check of the holds nested in a routed hold it meets (a payee's
    credit's evidence, a correspondent's forwarding hold): each hop against the payer's
    signed route (tchain.route_checks: its keys, its asset code, no third bank's IOU).

    Raises:
        VerificationError: one does not fit.
    """
    try:
        holds = hops_of(hold)
        bodies = [routed_body(entry) for entry in holds]
        payer = bodies[-1]
        if payer is None or payer.route is None or payer.route.receive is None or \
                any(body is None for body in bodies):
            raise _bad("the route does not start at a payer's hold with via and receive")
        check_along(holds, [body for body in bodies if body is not None])
    except MisconductError as e:
        raise VerificationError(f"routed hold {hold.id}: {e.message}") from e


def forward_hold(bank: BankIdentity, chain: ChainState, upstream: SignedEntry, terms: Terms,
                 now: int) -> tuple[Outcome, int]:
    """Our hold of what we hand on for ``upstream`` (a routed hold a peer sent us, checked):
    our own payment on our bank chain, signed by our key as its owner, carrying ``upstream``.

    Raises:
        RouteRefusedError: our terms do not take it, or the payer's ``receive`` is not left.
        InsufficientFundsError: we hold too little of the IOU we hand on (not our own).
    """
    body = routed_body(upstream)
    assert body is not None and body.route is not None and body.to_validator is not None
    out = terms.hands_on(str(body.asset), body.amount)
    receive = routed_body(origin(upstream))
    assert receive is not None and receive.route is not None and receive.route.receive is not None
    if out < receive.route.receive:
        raise RouteRefusedError(f"after this bank's fee {terms.fee} the payee would get {out}, "
                                f"less than the {receive.route.receive} its payer signed for")
    if not chain.issues(terms.pay) and available(chain, terms.pay) < out:
        raise InsufficientFundsError(f"{bank.name} holds {available(chain, terms.pay)} of "
                                     f"{terms.pay} to hand on, not {out}")
    fields: dict[str, Any] = {"to": body.to, "to_validator": body.to_validator,
                              "asset": terms.pay, "amount": str(out),
                              "forward": upstream.id, "via": list(body.route.via[1:])}
    intent = SignedIntent.from_dict(sign_intent(bank.key, "payment", chain.chain,
                                                chain.seq + 1, now, fields))
    ours = intent.body
    assert isinstance(ours, PaymentBody)
    entry = next_entry(bank, chain, now, "payment", intent,
                       entry_effects("payment", ours, bank.name), [upstream])
    return Outcome((entry,), (chain.advance(entry),)), out


def route_credit(bank: BankIdentity, chain: ChainState, upstream: SignedEntry,
                 downstream: SignedEntry, now: int) -> Outcome:
    """Our credit, on our bank chain, of what ``upstream`` paid us, once the next bank
    credited our hold (``downstream``, its signed credit): our receipt to the bank before us,
    carrying both."""
    body = routed_body(upstream)
    assert body is not None
    entry = next_entry(bank, chain, now, "credit", None,
                       entry_effects("credit", body, bank.name), [upstream, downstream])
    try:
        return Outcome((entry,), (chain.advance(entry),))
    except VerificationError as e:  # the checks before should make this unreachable
        raise InsufficientFundsError(str(e)) from e


def check_route_credit(credit: SignedEntry, ours: SignedEntry, next_bank: Any) -> None:
    """A correspondent's ``credited`` answer to our routed hold ``ours``, checked as if it
    lied: its credit carries our very hold and the credit the next bank (the one our hold's
    route names after the correspondent, under the key our payer signed for it, which the
    correspondent repeats in ``next_bank``, its answer's ``next``) signed of the
    correspondent's hold forwarding ours, crediting exactly what that
    hold pays.

    Raises:
        VerificationError: saying what does not fit (the correspondent kept our payer's money
            without the payee's side: tchain.proofs ``route_unpaid``).
    """
    if credit.kind != "credit" or len(credit.evidence) != 2:
        raise VerificationError(f"the correspondent's {credit.kind} carries "
                                f"{len(credit.evidence)} entries, not our hold and the next "
                                "bank's credit")
    try:
        held, onward = credit.evidence_entry(0), credit.evidence_entry(1)
        if held.raw != ours.raw:
            raise VerificationError("its first evidence is not our hold")
        body = routed_body(ours)
        assert body is not None and body.route is not None
        if credit.effects != (Effect(str(body.asset), body.amount, 0),):
            raise VerificationError("it does not credit what our hold pays")
        after = body.route.via[1] if len(body.route.via) > 1 else body.to_validator
        name, key = parse_next(next_bank)
        if name != after:
            raise VerificationError(f"it names {name} as the next bank, not {after}")
        payer = routed_body(origin(ours))
        assert payer is not None and payer.route is not None
        if key != payer.route.key_of(after):  # never the correspondent's word alone
            raise VerificationError(f"it names a key for {after} that the payer did not sign "
                                    f"for it ({key[:16]}…)")
        onward.verify(key)
        if onward.kind != "credit" or not onward.evidence:
            raise VerificationError(f"the next bank's entry is a {onward.kind}, not a credit")
        forwarding = onward.evidence_entry(0)
        forwarded = routed_body(forwarding)
        if forwarding.validator != credit.validator or forwarded is None or \
                forwarded.route is None or forwarded.route.forward != ours.id:
            raise VerificationError("the next bank's credit is not of the correspondent's hold "
                                    "forwarding ours")
        forwarding.verify()
        if onward.effects != (Effect(str(forwarded.asset), forwarded.amount, 0),):
            raise VerificationError("the next bank's credit does not credit what the "
                                    "correspondent's hold pays")
    except (EncodingError, SignatureError) as e:
        raise VerificationError(f"the correspondent's credit does not verify: {e.message}"
                                ) from e


def parse_next(value: Any) -> tuple[str, str]:
    """A correspondent's ``next`` (the bank it handed on to, and that bank's key as it pinned
    it) from its ``credited`` answer."""
    if not isinstance(value, dict) or set(value) != {"name", "key"} or \
            not isinstance(value["key"], str):
        raise EncodingError("next is {name, key}")
    return parse_validator_name(value["name"]), value["key"]


def forwarded(entry: SignedEntry) -> SignedEntry:
    """The hold a correspondent's forwarding hold carries (its only evidence, named by its
    ``forward``), for the chain verifier.

    Raises:
        VerificationError: it carries anything else.
    """
    body = routed_body(entry)
    assert body is not None and body.route is not None
    count = len(entry.evidence)
    try:
        upstream = entry.evidence_entry(0) if count == 1 else None
    except EncodingError:
        upstream = None  # (not an entry: refused below)
    if upstream is None or upstream.id != body.route.forward or routed_body(upstream) is None:
        raise VerificationError(f"entry {entry.height}: a forwarding hold carries the routed "
                                f"hold {body.route.forward} it forwards, and only it; it "
                                f"carries {count} entries")
    return upstream


def route_credit_parts(entry: SignedEntry) -> tuple[SignedEntry, SignedEntry, SignedEntry]:
    """A correspondent's credit's evidence, for the chain verifier: the hold it was paid by,
    the next bank's credit, and our hold that credit credits (the evidence of it).

    Raises:
        VerificationError: it is not that.
    """
    try:
        upstream, onward = entry.evidence_entry(0), entry.evidence_entry(1)
        ours = onward.evidence_entry(0)
    except (EncodingError, IndexError) as e:
        raise VerificationError(f"entry {entry.height}: a correspondent's credit carries the "
                                f"hold it was paid by and the next bank's credit: {e}") from e
    body = routed_body(ours)
    if onward.kind != "credit" or body is None or body.route is None or \
            body.route.forward != upstream.id or ours.validator != entry.validator or \
            ours.chain != entry.chain:
        raise VerificationError(f"entry {entry.height}: the next bank's credit is not of this "
                                "chain's hold forwarding the hold it was paid by")
    if onward.effects != (Effect(str(body.asset), body.amount, 0),):
        raise VerificationError(f"entry {entry.height}: the next bank's credit does not credit "
                                "what this chain's hold pays")
    return upstream, onward, ours
