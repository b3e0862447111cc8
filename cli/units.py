"""Amounts as people read them.

The protocol moves integers in each asset's smallest unit (cents for USD: PROTOCOL.md §1),
and no bank says today how many decimals an asset has: a well-known document lists its assets
by UAI alone. So amounts show in minor units. This is the one place that would change if
banks published decimals (a protocol change, not made here): pass them as ``decimals``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["show"]


def show(amount: int, asset: str, decimals: Mapping[str, int] | None = None, *,
         signed: bool = False) -> str:
    """``amount`` of ``asset`` as text: in minor units unless its decimals are known
    (``1050`` with 2 decimals is ``10.50``); ``signed`` puts ``+`` before a gain."""
    places = (decimals or {}).get(asset, 0)
    sign = "-" if amount < 0 else ("+" if signed and amount > 0 else "")
    whole, part = divmod(abs(amount), 10**places)
    return f"{sign}{whole}" + (f".{part:0{places}d}" if places else "")
