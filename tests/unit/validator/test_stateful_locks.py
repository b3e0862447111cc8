"""The two-bank state machine (test_stateful_banks.TwoBanks) with hash-time locks: locks
within and across banks on a few shared secrets, claims with the right or a wrong preimage,
early, late and twice, under the same lost answers, banks down, crashes and passing time. The
same invariants after every step: each bank's audit passes and no available balance is
negative; once settled, each asset sums to zero and no hold is open (every lock was claimed
or came back)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, rule

from tchain.errors import TChainError
from tchain.htlc import hash_of
from tests.campaign import scale
from tests.unit.validator.test_stateful_banks import HOME, TwoBanks

SECRETS = ["11" * 32, "22" * 32]


class TwoBanksWithLocks(TwoBanks):
    locks = Bundle("locks")

    @rule(target=locks, payer=TwoBanks.customers, payee=TwoBanks.customers,
          amount=st.integers(1, 3_000), expires_in=st.integers(10_000, 30_000),
          secret=st.sampled_from(SECRETS))
    def lock(self, payer, payee, amount: int, expires_in: int, secret: str):
        (home, c), (to_home, to) = payer, payee
        try:
            entry = self.banks[home].submit(c, "lock", {
                "to": to.chain, "to_validator": to_home, "asset": HOME[home],
                "amount": str(amount), "hash": hash_of(secret),
                "expires": self.clock.now + expires_in}).outcome.entries[0]
        except TChainError:  # refused: funds, itself, a peer not pinned, ...
            return None
        return to_home, to, entry

    @rule(lock=locks, secret=st.sampled_from(SECRETS))
    def claim(self, lock, secret: str) -> None:
        if lock is None:
            return
        home, payee, entry = lock
        with self._refusable():
            self.banks[home].submit(payee, "claim", {"lock": entry.id, "preimage": secret})

    @rule(lock=locks, secret=st.sampled_from(SECRETS))
    def claim_again(self, lock, secret: str) -> None:
        self.claim(lock, secret)


TwoBanksWithLocks.TestCase.settings = settings(
    max_examples=scale(12, 100), stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_two_banks_with_locks_state_machine = TwoBanksWithLocks.TestCase
