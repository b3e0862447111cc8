"""What the customer commands share: opening the wallet, times, reporting a submission."""

from __future__ import annotations

import datetime as dt

import click

from cli.options import passphrase
from cli.output import emit
from cli.session import Session, Submission
from cli.wallet import Wallet
from tchain.model import SignedEntry

__all__ = ["entries_json", "moved", "open_session", "when"]


def open_session(ctx: click.Context) -> Session:
    wallet = Wallet.load(ctx.obj["wallet"])
    return Session(wallet, wallet.unlock(passphrase()))


def when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def entries_json(entries: list[SignedEntry]) -> list[dict[str, object]]:
    return [{"id": e.id, "height": e.height, "kind": e.kind, "time": e.time,
             "effects": [x.to_dict() for x in e.effects]} for e in entries]


def moved(ctx: click.Context, done: Submission, what: str) -> None:
    """Print what a submitted intent did; for a flow with a peer bank, where it stands."""
    mine = done.entries[0]
    text = f"{what}: entry {mine.height} of your chain, signed by your bank ({mine.id[:16]})"
    flow = done.flow
    if flow is not None:
        text += {
            "settled": f"\nsettled: {flow['peer']} signed its side too",
            "pending": f"\npending: held until {flow['peer']} signs its side (it has until "
                       f"{when(flow['deadline'])} UTC); check with `tchain balance`",
            "released": f"\nnot done, the hold was released: {flow['reason']}",
        }.get(flow["state"], f"\n{flow['state']}")
    emit(ctx, {"entries": entries_json(done.entries), "entry": mine.id, "flow": flow}, text)
