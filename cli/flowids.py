"""Which flow across banks an entry of the customer's chain belongs to.

A bank keeps a cross-bank flow under the id of the entry that opened it (docs/protocol.md
§11): our payment's hold to another bank's customer, or our take of another bank's offer;
the maker's bank keeps an exchange under the taker's take. The wallet works these out from
its own verified entries, so any of them (the opening entry, the settle or release that closed
it, the maker's fill of part of its offer) leads to the flow.
"""

from __future__ import annotations

from cli.shortids import resolve_prefix
from tchain.model import SignedEntry
from tchain.state import closed_hold

__all__ = ["flow_of", "resolve_flow"]


def flow_of(entry: SignedEntry) -> str | None:
    """The id the banks keep the entry's cross-bank flow under, or None if it is in none."""
    if entry.kind == "take" or (entry.kind in ("payment", "lock") and any(
            e.held > 0 for e in entry.effects)):
        return entry.id
    if entry.kind in ("settle", "fill"):
        peer = entry.evidence_entry(0)
        if peer.kind == "take":
            return peer.id  # we made the offer: the exchange is kept under the taker's take
        return closed_hold(entry)
    if entry.kind == "release" and entry.evidence_entry(0).kind in ("payment", "take", "lock"):
        return closed_hold(entry)
    return None


def resolve_flow(typed: str, entries: list[SignedEntry]) -> tuple[str | None, SignedEntry | None]:
    """The flow that ``typed`` (any unique start of an entry's or a flow's id) names, with the
    first entry of the chain in it; (None, entry) for an entry in no flow; (None, None) when
    nothing the wallet knows starts so."""
    stands_for: dict[str, str] = {}  # each id the wallet knows: its flow, or itself
    first: dict[str, SignedEntry] = {}
    for entry in entries:
        key = flow_of(entry) or entry.id
        stands_for[entry.id] = key
        stands_for.setdefault(key, key)
        first.setdefault(key, entry)
    found = resolve_prefix(typed, stands_for, "entry")
    if found is None:
        return None, None
    entry = first[found]
    return (found if flow_of(entry) is not None else None), entry
