"""Rate limits per signing key, shared by every worker of a bank.

A customer's key (the owner of the chain an intent is for, or the key that signed a read) may
make ``rate`` requests per second with bursts of ``burst``; past that the answer is 429
``rate_limited`` with ``Retry-After`` and nothing is done. Only keys that proved themselves are
charged (a valid signature), so nobody can spend another customer's budget by naming their
chain. Pinned peer banks are not limited here: they are accountable by signature and their
traffic is the bank's own business. Limits per network address belong to the reverse proxy in
front of the validator, which knows the client's real address.
"""

from __future__ import annotations

from pathlib import Path

from tchain.clock import now_ms
from tchain.errors import RateLimitedError
from validator.store import RateBuckets

__all__ = ["DEFAULT_BURST", "DEFAULT_RATE", "RateLimiter"]

DEFAULT_RATE = 50.0
DEFAULT_BURST = 100
LIMITS_DIR = "limits"
# The budget every key that is nobody here (no chain's owner, regulator or peer) shares:
# anyone can make keys, so a budget each would let them fill the store of budgets.
STRANGERS = "strangers"
# The budget every registration shares: a registration needs no key here, so only a budget of
# its own bounds how fast anyone can fill the disk with chains (limits per network address
# belong to the reverse proxy in front).
REGISTRATIONS = "registrations"
REGISTRATION_RATE = 5.0
REGISTRATION_BURST = 50
# Attempts to recover one chain's key: a few a day is a person who lost a key; more is someone
# guessing a KYC record (the third outside attacker made 201 guesses in 0.7 s, each signed by
# a fresh key, so a budget per signing key does not hold them).
RECOVERY_RATE = 1 / 600
RECOVERY_BURST = 5


class RateLimiter:
    """Token buckets in ``data/limits`` (a small LMDB environment of its own)."""

    def __init__(self, data: Path, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets = RateBuckets(data / LIMITS_DIR) if rate > 0 else None

    @property
    def enabled(self) -> bool:
        return self._buckets is not None

    def charge(self, key: str) -> None:
        """Spend one request of ``key``'s budget.

        Raises:
            RateLimitedError: the budget is spent (429), with ``retry_after_ms``.
        """
        if self._buckets is None:
            return
        wait = self._buckets.take(key, now_ms(), self.rate, self.burst)
        if wait:
            raise RateLimitedError(
                f"key {key} made more than {self.rate:g} requests per second (bursts of "
                f"{self.burst}); try again in {wait} ms", retry_after_ms=wait)

    def charge_recovery(self, chain_id: str) -> None:
        """Spend one attempt of the budget for recovering ``chain_id``'s key.

        Raises:
            RateLimitedError: too many attempts on this chain lately (429).
        """
        if self._buckets is None:
            return
        wait = self._buckets.take(f"recovery:{chain_id}", now_ms(), RECOVERY_RATE,
                                  RECOVERY_BURST)
        if wait:
            raise RateLimitedError(
                f"chain {chain_id} was asked for too often lately ({RECOVERY_BURST} attempts, "
                f"then one every {1 / RECOVERY_RATE:g} s); try again in {wait} ms",
                retry_after_ms=wait)

    def charge_registration(self) -> None:
        """Spend one registration of the bank's budget for them (REGISTRATIONS).

        Raises:
            RateLimitedError: registrations come faster than the bank takes them (429).
        """
        if self._buckets is None:
            return
        wait = self._buckets.take(REGISTRATIONS, now_ms(), REGISTRATION_RATE,
                                  REGISTRATION_BURST)
        if wait:
            raise RateLimitedError(
                f"registrations at this bank come faster than {REGISTRATION_RATE:g} a second "
                f"(bursts of {REGISTRATION_BURST}); try again in {wait} ms", retry_after_ms=wait)
