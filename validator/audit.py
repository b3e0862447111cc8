"""The audit: re-verify every chain of the bank from its signed entries, check the stored state
against what the entries say, rebuild the books (tchain.books) from the entries and check them
against the books the store keeps, and check that each asset sums to zero over all chains once
what the peers hold of it is counted.

Value crosses a bank's edge only in entries a peer's signature completes: a credit carrying a
peer's payment brings it in, a settle (of a payment, an offer or a take) sends or brings it; the
peer is the bank whose key signed that entry. So each peer's position in each asset is minus the
sum of those entries' balance changes, and what is set aside for flows still open is what their
holds hold. The audit also checks that every open hold belongs to an open offer or a flow in
progress (and every flow in progress still holds), and lists the flows still waiting on a peer.

It reads one consistent LMDB snapshot, so it may run while the validator serves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tchain.books import Move, Position, opened
from tchain.errors import VerificationError
from tchain.flow_states import UNSETTLED, Flow, FlowState, FlowType, OfferRecord
from tchain.model import SignedEntry
from tchain.state import Hold
from tchain.verify import ChainVerifier
from validator import route
from validator.ledger import Ledger
from validator.store import Reader, Writer

__all__ = ["AuditReport", "audit", "rebuild_books"]

PAGE = 1000


@dataclass
class AuditReport:
    chains: int = 0
    entries: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    # (peer, asset) -> the position the entries give
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)
    in_flight: list[str] = field(default_factory=list)
    proofs: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def held_by_peers(self, asset: str) -> int:
        """What all peers hold of ``asset`` by the positions the entries give."""
        return sum(p.held for (_, a), p in self.positions.items() if a == asset)


def audit(ledger: Ledger) -> AuditReport:
    """Audit every chain in ``ledger``'s store (see module docstring)."""
    report = AuditReport()
    totals: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    positions: dict[tuple[str, str], Position] = defaultdict(Position)
    open_holds: dict[str, tuple[str, Hold]] = {}
    key, name = ledger.bank.public_key, ledger.bank.name
    with ledger.store.read() as r:
        # a peer removed since still signed the entries that crossed with it then
        peers = {p["key"]: p["name"] for p in [*r.former_peers(), *r.peers()]}
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
                            peer_key = _crossed_with(entry, key)
                            if peer_key is None:
                                continue
                            peer = peers.get(peer_key)
                            if peer is None:
                                report.problems.append(f"chain {chain}: entry {entry.height} "
                                                       f"crosses with {peer_key}, no pinned "
                                                       "peer's key")
                                continue
                            for effect in entry.effects:
                                positions[peer, effect.asset] = positions[peer, effect.asset] \
                                    .moved(Move(effect.asset, held=-effect.balance))
                        start += len(page)
                        report.entries += len(page)
                except VerificationError as e:
                    report.problems.append(f"chain {chain}: {e.message}")
                    continue
                stored = r.state_with_holds(chain)
                if stored is None or verifier.state is None or stored != verifier.state:
                    report.problems.append(f"chain {chain}: the stored state differs from what "
                                           "its entries give")
                    continue
                for asset, balance in verifier.state.balances.items():
                    totals[asset] += balance.balance
                    held[asset] += balance.held
                open_holds.update({h: (chain, hold)
                                   for h, hold in verifier.state.holds.items()})
        report.problems += _check_holds(r, {h: (c, hold.kind)
                                            for h, (c, hold) in open_holds.items()})
        _reserve(r, open_holds, positions)
        report.problems += _check_books(r, totals, positions)
        for flow_id, flow_record in r.records("flows"):
            flow = Flow.from_dict(flow_record)
            if flow.state in UNSETTLED:
                report.in_flight.append(f"{flow.type.value} {flow_id[:16]} {flow.state.value} "
                                        f"with {flow.peer}")
            if flow.state is FlowState.DEFAULTED:
                report.in_flight.append(f"exchange {flow_id[:16]}: {flow.reason} (proof kept)")
        report.proofs = len(r.records("proofs"))
    report.totals, report.held = dict(totals), dict(held)
    report.positions = {k: p for k, p in positions.items() if p != Position()}
    for asset in sorted(set(totals) | {a for _, a in positions}):
        total, by_peers = totals.get(asset, 0), report.held_by_peers(asset)
        if total + by_peers:
            report.problems.append(f"{asset} sums to {total} over all chains, but the peers "
                                   f"hold {by_peers} of it by the entries that crossed")
    return report


# the flows that hold value on one of our chains while they wait on the peer
_HELD = frozenset({FlowType.TRANSFER, FlowType.TAKE, FlowType.LOCK})

def _reserve(r: Reader, open_holds: dict[str, tuple[str, Hold]],
             positions: dict[tuple[str, str], Position]) -> None:
    """Add what the holds of flows still waiting on a peer set aside (tchain.books.opened)."""
    waiting = []
    for flow_id, stored in r.records("flows"):
        flow = Flow.from_dict(stored)
        if flow.type in _HELD and flow.waiting_on_peer and flow_id in open_holds:
            waiting.append(flow_id)
            for move in opened(open_holds[flow_id][1]):
                positions[flow.peer, move.asset] = positions[flow.peer, move.asset].moved(move)
    for peer, move in route.reserved(r, waiting):  # what a route we hand on brings us
        positions[peer, move.asset] = positions[peer, move.asset].moved(move)


def _check_books(r: Reader, totals: dict[str, int],
                 positions: dict[tuple[str, str], Position]) -> list[str]:
    """The books the store keeps are the books the entries give."""
    if not r.books_kept():
        return ["the store keeps no books yet (a store of an older version): they are "
                "rebuilt from the entries when the validator next starts"]
    problems = []
    kept_totals = r.totals()
    for asset in sorted(set(totals) | set(kept_totals)):
        if totals.get(asset, 0) != kept_totals.get(asset, 0):
            problems.append(f"{asset}: the books keep {kept_totals.get(asset, 0)} over our "
                            f"chains, the chains sum to {totals.get(asset, 0)}")
    kept = {(peer, asset): p for peer, asset, p in r.positions() if p != Position()}
    for peer, asset in sorted(set(kept) | {k for k, p in positions.items() if p != Position()}):
        want, have = positions.get((peer, asset), Position()), kept.get((peer, asset),
                                                                        Position())
        if want != have:
            problems.append(f"position with {peer} in {asset}: the books keep {have}, the "
                            f"entries give {want}")
    return problems


def rebuild_books(ledger: Ledger) -> bool:
    """Give a store kept before the books (an older version's) the books its entries give,
    once; False if it had them. Each process that starts a bank calls this; the first does
    the work, in one write transaction (it reads every entry: a long one, once)."""
    with ledger.store.read() as r:
        if r.books_kept():
            return False
    report = audit(ledger)

    def work(w: Writer) -> bool:
        if w.books_kept():
            return False
        w.put_books(report.totals, [(peer, asset, p)
                                    for (peer, asset), p in report.positions.items()])
        return True

    return ledger.store.write(work)


def _check_holds(r: Reader, open_holds: dict[str, tuple[str, str]]) -> list[str]:
    """Every open hold belongs to a flow or an offer still in progress, and the reverse."""
    problems = []
    flows = {k: Flow.from_dict(v) for k, v in r.records("flows")}
    offers = {k: OfferRecord.from_dict(v) for k, v in r.records("offers")}
    # our customers' takes waiting for an open offer's window (validator/bids.py)
    bids = {bid["take"] for offer in offers.values() if offer.is_open for bid in offer.bids
            if "message" not in bid}
    for hold_id, (chain, kind) in sorted(open_holds.items()):
        if kind == "offer":
            ok = hold_id in offers and offers[hold_id].is_open
        elif kind == "lock" and (lock := r.record("locks", hold_id)) is not None:
            ok = lock["state"] == "open"  # made here for a customer here: decided here
        elif kind == "plan":  # a plan's hold, from its turn until its transfer or release
            ok = r.record("plans", hold_id) is not None or \
                (hold_id in flows and flows[hold_id].waiting_on_peer)
        else:
            ok = (hold_id in flows and flows[hold_id].waiting_on_peer) or hold_id in bids
        if not ok:
            problems.append(f"chain {chain}: {kind} {hold_id} holds value but no open "
                            f"{'offer' if kind == 'offer' else 'flow'} accounts for it")
    for flow_id, flow in flows.items():
        if flow.type in _HELD and flow.waiting_on_peer and flow_id not in open_holds:
            problems.append(f"{flow.type.value} {flow_id} is {flow.state.value} but holds "
                            "nothing")
    return problems


def _crossed_with(entry: SignedEntry, own_key: str) -> str | None:
    """The key of the peer an entry moves value across the bank's edge with (the bank whose
    entry its evidence is), or None if it moves none."""
    if entry.kind not in ("settle", "credit", "fill", "claim"):
        return None
    peer_key: str = entry.evidence[0]["entry"]["validator"]
    return None if peer_key == own_key else peer_key
