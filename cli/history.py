"""``tchain history`` as rows: every effect of every entry, the other side by address.

An entry may move several assets (an exchange's settle gives one and gets the other), and each
shows on a row of its own: showing one per entry hid the received leg of every exchange.
"""

from __future__ import annotations

from typing import Any

from cli.counterparties import Party, party_of
from cli.units import show
from tchain.model import Effect, SignedEntry

__all__ = ["HEADERS", "history_rows"]

HEADERS = ["height", "time (UTC)", "kind", "asset", "amount", "held", "counterparty", "memo"]


def history_rows(entries: list[SignedEntry], names: dict[str, str], when: Any
                 ) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """The table's rows (``HEADERS``) and the same entries as JSON; ``names`` are addresses
    by chain id, ``when`` formats an entry's time."""
    rows: list[list[str]] = []
    out: list[dict[str, Any]] = []
    for e in entries:
        party = party_of(e)
        other = None if party is None else _named(party, names)
        body = e.intent.doc["intent"]["body"] if e.intent else None
        memo = str(body.get("memo", "")) if body else ""
        side = "" if party is None else f"{party.role} {other}"
        for effect in e.effects or [None]:
            rows.append([str(e.height), when(e.time), e.kind, *_amounts(effect), side, memo])
        out.append({"id": e.id, "height": e.height, "kind": e.kind, "time": e.time,
                    "effects": [x.to_dict() for x in e.effects], "counterparty": other,
                    "memo": memo or None})
    return rows, out


def _amounts(effect: Effect | None) -> list[str]:
    """Asset, balance change and hold change; blank where nothing moves."""
    if effect is None:
        return ["", "", ""]
    return [effect.asset,
            show(effect.balance, effect.asset, signed=True) if effect.balance else "",
            show(effect.held, effect.asset, signed=True) if effect.held else ""]


def _named(party: Party, names: dict[str, str]) -> str:
    """A party by address when it is known, else by what the entry says of it."""
    if party.label is not None:
        return party.label
    assert party.chain is not None
    where = f" at {party.bank_name}" if party.bank_name else ""
    return names.get(party.chain) or f"chain {party.chain[:12]}{where}"
