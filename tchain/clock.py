"""The time every party reads: milliseconds since the Unix epoch, UTC.

A module of its own so that the wallet and the bank read the same clock without importing
the engine (and with it the store).
"""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """The validator's clock: milliseconds since the Unix epoch, UTC."""
    return time.time_ns() // 1_000_000
