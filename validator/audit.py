"""The audit: re-verify every chain of the bank from its signed entries, check the stored state
against what the entries say, and check that each asset sums to zero over all chains once the
value that crossed to or from peer banks is counted.

Value crosses a bank's edge only in entries a peer's signature completes: a credit carrying a
peer's payment brings it in, a settle (of a payment, an offer or a take) sends or brings it. So
for every asset: the sum over chains minus the sum of those entries' balance changes is 0. The
audit also checks that every open hold belongs to an open offer or a flow in progress (and every
flow in progress still holds), and lists the flows still waiting on a peer.

It reads one consistent LMDB snapshot, so it may run while the validator serves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tchain.errors import VerificationError
from tchain.ledger import Ledger
from tchain.model import SignedEntry
from tchain.store import Reader
from tchain.verify import ChainVerifier

__all__ = ["AuditReport", "audit"]

PAGE = 1000


@dataclass
class AuditReport:
    chains: int = 0
    entries: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    crossed: dict[str, int] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    in_flight: list[str] = field(default_factory=list)
    proofs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(ledger: Ledger) -> AuditReport:
    """Audit every chain in ``ledger``'s store (see module docstring)."""
    report = AuditReport()
    totals: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    crossed: dict[str, int] = defaultdict(int)
    open_holds: dict[str, tuple[str, str]] = {}
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
                            entry = verifier.feed(raw)
                            if _crosses(entry, key):
                                for effect in entry.effects:
                                    crossed[effect.asset] += effect.balance
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
                open_holds.update({h: (chain, hold.kind)
                                   for h, hold in verifier.state.holds.items()})
        report.problems += _check_holds(r, open_holds)
        for flow_id, flow in r.records("flows"):
            if flow["state"] in ("pending", "accepted", "awaiting_peer"):
                report.in_flight.append(f"{flow['type']} {flow_id[:16]} {flow['state']} with "
                                        f"{flow['peer']}")
            if flow["state"] == "defaulted":
                report.in_flight.append(f"exchange {flow_id[:16]}: {flow['reason']} (proof kept)")
        report.proofs = len(r.records("proofs"))
    report.totals, report.held, report.crossed = dict(totals), dict(held), dict(crossed)
    for asset, total in sorted(totals.items()):
        if total != crossed.get(asset, 0):
            report.problems.append(f"{asset} sums to {total} over all chains, but "
                                   f"{crossed.get(asset, 0)} crossed to or from peers")
    return report


def _check_holds(r: Reader, open_holds: dict[str, tuple[str, str]]) -> list[str]:
    """Every open hold belongs to a flow or an offer still in progress, and the reverse."""
    problems = []
    flows = dict(r.records("flows"))
    offers = dict(r.records("offers"))
    for hold_id, (chain, kind) in sorted(open_holds.items()):
        if kind == "offer":
            ok = offers.get(hold_id, {}).get("state") == "open"
        else:
            ok = flows.get(hold_id, {}).get("state") in ("pending", "accepted")
        if not ok:
            problems.append(f"chain {chain}: {kind} {hold_id} holds value but no open "
                            f"{'offer' if kind == 'offer' else 'flow'} accounts for it")
    for flow_id, flow in flows.items():
        if flow["type"] in ("transfer", "take") and flow["state"] in ("pending", "accepted") \
                and flow_id not in open_holds:
            problems.append(f"{flow['type']} {flow_id} is {flow['state']} but holds nothing")
    return problems


def _crosses(entry: SignedEntry, own_key: str) -> bool:
    """Whether an entry moves value across the bank's edge (its other side is at a peer)."""
    if entry.kind == "settle":
        return True
    return entry.kind == "credit" and entry.evidence[0]["entry"]["validator"] != own_key
