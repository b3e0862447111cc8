"""How long the fault campaigns run: a few cycles in the suite, many with
``TCHAIN_LONG_CAMPAIGN=1`` (the README's reliability figures come from that run). Each campaign
prints one line of figures; ``pytest -s`` shows them."""

from __future__ import annotations

import os

LONG = os.environ.get("TCHAIN_LONG_CAMPAIGN") == "1"


def scale(short: int, long: int) -> int:
    """``short`` in the suite, ``long`` in the long campaign."""
    return long if LONG else short


def report(campaign: str, **figures: object) -> None:
    print(f"\n[campaign] {campaign}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
