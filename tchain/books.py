"""The books a bank keeps of what crossed between it and each peer, and the rule every write
keeps: value moves between chains and across the bank's edge, it is never made or lost.

A pinned key proves which bank sent a message, never that the message is true: a peer's signed
hold may claim its customer pays us with value the peer never had. So each bank keeps, per
peer and per asset, a **position** (as an Interledger connector keeps a balance per peer):

- ``held``: what the peer's chains hold of the asset by crossing with us: what went from our
  chains to the peer's, less what came back, counted when a flow settles. It is never below
  zero for an asset we issue, and never above zero for an asset the peer issues (then minus it
  is what we hold of the peer's IOU);
- ``incoming``: what a flow still open will bring us from the peer (our customer took the
  peer's offer): set aside from ``held`` so that nothing else spends it meanwhile;
- ``outgoing``: what is on its way to the peer, held on our chains until the peer does its
  side. It is not the peer's yet (the flow may be refused); it only tells a peer that is
  racing ahead of our books from one that claims what it never had.

What may cross (docs/protocol.md §13): a peer pays us in its own IOU freely (its liability
grows); it hands back our IOU only up to what it holds of it; a third bank's IOU does not
cross between two banks at all, since that bank's books would never learn who holds it.

The invariant, kept by every write (the store refuses a write that breaks it): for every
asset, the sum of its balances over all our chains plus the ``held`` of every peer's position
is zero. For our own asset that is "our liability equals what our customers and our peers'
customers hold"; for a peer's asset, "what our customers hold of it is what we hold of it by
our position with that peer".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tchain.encoding import encode_built, parse_own
from tchain.errors import (
    BooksError,
    ForeignAssetError,
    PositionError,
    PositionPendingError,
)
from tchain.model import Effect
from tchain.state import Hold
from tchain.values import UAI

__all__ = ["Move", "Position", "Tally", "check_crossing", "check_incoming", "crossing_side",
           "opened", "released", "settled"]


@dataclass(frozen=True, slots=True)
class Position:
    """What crossed between us and one peer in one asset (see the module docstring)."""

    held: int = 0
    incoming: int = 0
    outgoing: int = 0

    def moved(self, move: Move) -> Position:
        """This position after ``move``.

        Raises:
            BooksError: a reservation would go below zero (our bug: nothing was reserved).
        """
        after = Position(self.held + move.held, self.incoming + move.incoming,
                         self.outgoing + move.outgoing)
        if after.incoming < 0 or after.outgoing < 0:
            raise BooksError(f"position of {move.asset} would reserve {after.incoming} "
                             f"incoming and {after.outgoing} outgoing")
        return after

    def to_bytes(self) -> bytes:
        return encode_built({"held": str(self.held), "incoming": str(self.incoming),
                             "outgoing": str(self.outgoing)})

    @classmethod
    def from_bytes(cls, raw: bytes) -> Position:
        d = parse_own(raw)  # our own record: a sum over many chains may pass 38 digits
        return cls(int(d["held"]), int(d["incoming"]), int(d["outgoing"]))


@dataclass(frozen=True, slots=True)
class Move:
    """A change of one position: of ``asset``, by these amounts."""

    asset: str
    held: int = 0
    incoming: int = 0
    outgoing: int = 0

    def __neg__(self) -> Move:
        return Move(self.asset, -self.held, -self.incoming, -self.outgoing)


def crossing_side(ours: str, peer: str, asset: str) -> str:
    """``"ours"`` if we issue ``asset`` (a bank's IOU, or an asset of one of its customers),
    ``"theirs"`` if ``peer`` does.

    Raises:
        ForeignAssetError: a third bank issues it: it does not cross between us and ``peer``.
    """
    issuer = UAI.parse(asset).issuer_validator
    if issuer == ours:
        return "ours"
    if issuer == peer:
        return "theirs"
    raise ForeignAssetError(f"{asset} is issued at {issuer}: only IOUs of {ours} and {peer} "
                            f"cross between them, since {issuer}'s books would not learn who "
                            "holds it")


def check_crossing(ours: str, peer: str, *assets: str) -> None:
    """Refuse a flow with ``peer`` that would move an asset of a third bank (ForeignAssetError)."""
    for asset in assets:
        crossing_side(ours, peer, asset)


def check_incoming(ours: str, peer: str, asset: str, amount: int, position: Position) -> None:
    """May ``peer`` give us ``amount`` of ``asset`` now?

    Its own IOU, always; ours, only out of what it holds of it and has not promised us
    already; a third bank's, never.

    Raises:
        ForeignAssetError: a third bank's asset.
        PositionError: more of our asset than the peer could hold even if every flow of ours
            still on its way to it settled: a claim only a dishonest bank makes.
        PositionPendingError: more than it holds by our books now, but not more than it
            would once our flows on their way to it settle: the peer may be ahead of us.
    """
    if crossing_side(ours, peer, asset) == "theirs":
        return
    room = position.held - position.incoming
    if amount <= room:
        return
    if amount <= room + position.outgoing:
        raise PositionPendingError(f"{peer} would give {amount} {asset} but holds {room} of it "
                                   f"by {ours}'s books until flows on their way to it settle",
                                   held=str(room))
    raise PositionError(f"{peer} would give {amount} {asset} but holds only {room} of it, "
                        f"{room + position.outgoing} with every flow on its way to it",
                        held=str(room))


def opened(hold: Hold) -> list[Move]:
    """What a hold waiting on a peer sets aside: the amount on its way out, and for a take
    what the peer's maker will give us."""
    moves = [Move(hold.asset, outgoing=hold.amount)]
    if hold.kind == "take" and hold.get is not None:
        moves.append(Move(str(hold.get.asset), incoming=hold.get.amount))
    return moves


def released(hold: Hold) -> list[Move]:
    """A hold waiting on a peer given back: nothing crossed."""
    return [-move for move in opened(hold)]


def settled(hold: Hold) -> list[Move]:
    """A hold waiting on a peer completed: its amount crossed to the peer, and for a take
    what the peer's maker gave crossed to us."""
    moves = [Move(hold.asset, held=hold.amount, outgoing=-hold.amount)]
    if hold.kind == "take" and hold.get is not None:
        moves.append(Move(str(hold.get.asset), held=-hold.get.amount,
                          incoming=-hold.get.amount))
    return moves


class Tally:
    """What one write did to the books: each asset's change over our chains and over the
    peers' positions. Balanced when, for every asset, the two sum to zero."""

    __slots__ = ("chains", "positions")

    def __init__(self) -> None:
        self.chains: dict[str, int] = defaultdict(int)
        self.positions: dict[str, int] = defaultdict(int)

    def entry(self, effects: tuple[Effect, ...]) -> None:
        """An entry written: its balance changes."""
        for effect in effects:
            if effect.balance:
                self.chains[effect.asset] += effect.balance

    def move(self, move: Move) -> None:
        if move.held:
            self.positions[move.asset] += move.held

    def absorb(self, other: Tally) -> None:
        """Count what a nested write did (validator.store.Writer.all_or_nothing) in this one."""
        for asset, change in other.chains.items():
            self.chains[asset] += change
        for asset, change in other.positions.items():
            self.positions[asset] += change

    def touched(self) -> set[str]:
        """The assets whose sum over our chains changed (so their stored total must too)."""
        return {asset for asset, change in self.chains.items() if change}

    def check(self) -> None:
        """Raises BooksError for an asset made or lost by this write."""
        for asset in set(self.chains) | set(self.positions):
            change = self.chains.get(asset, 0) + self.positions.get(asset, 0)
            if change:
                raise BooksError(f"this write would change the sum of {asset} over our chains "
                                 f"and our peers' positions by {change}: value made or lost")
