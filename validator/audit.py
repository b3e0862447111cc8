"""The audit: re-verify every chain of the bank from its signed entries, check the stored state
against what the entries say, and check that each asset sums to zero over all chains.

It reads one consistent LMDB snapshot, so it may run while the validator serves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tchain.errors import VerificationError
from tchain.ledger import Ledger
from tchain.verify import ChainVerifier

__all__ = ["AuditReport", "audit"]

PAGE = 1000


@dataclass
class AuditReport:
    chains: int = 0
    entries: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(ledger: Ledger) -> AuditReport:
    """Audit every chain in ``ledger``'s store (see module docstring)."""
    report = AuditReport()
    totals: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    key, name = ledger.validator.public_key, ledger.validator.name
    with ledger.store.read() as r:
        after = None
        while ids := r.chain_ids(after, PAGE):
            after = ids[-1]
            for chain in ids:
                report.chains += 1
                verifier = ChainVerifier(key, name, chain)
                start = 0
                try:
                    while page := r.entries(chain, start, PAGE):
                        for raw in page:
                            verifier.feed(raw)
                        start += len(page)
                        report.entries += len(page)
                except VerificationError as e:
                    report.problems.append(f"chain {chain}: {e.message}")
                    continue
                stored = r.state(chain)
                if stored is None or verifier.state is None or stored != verifier.state:
                    report.problems.append(f"chain {chain}: the stored state differs from what "
                                           "its entries give")
                    continue
                for asset, balance in verifier.state.balances.items():
                    totals[asset] += balance.balance
                    held[asset] += balance.held
    report.totals, report.held = dict(totals), dict(held)
    for asset, total in sorted(totals.items()):
        if total != 0:
            report.problems.append(f"{asset} sums to {total} over all chains, not 0")
    return report
