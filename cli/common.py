"""What the customer commands share: opening the wallet, times, reporting a submission."""

from __future__ import annotations

from typing import Any

import click

from cli.errors import NotDoneError
from cli.options import passphrase
from cli.output import emit, note, when
from cli.rotation import finish_rotation
from cli.session import Session, Submission
from cli.wallet import Wallet
from cli.walletlock import wallet_lock
from tchain.flow_states import FlowState
from tchain.model import SignedEntry

__all__ = ["entries_json", "hold_wallet", "moved", "open_session", "when"]


def hold_wallet(ctx: click.Context) -> None:
    """Hold the wallet for the rest of the command: one command at a time writes the wallet
    and its copy of the chain (cli.walletlock); the others wait their turn."""
    if not ctx.obj.get("held"):
        ctx.find_root().with_resource(wallet_lock(ctx.obj["wallet"], ctx.obj["lock_wait"]))
        ctx.obj["held"] = True


def open_session(ctx: click.Context, secret: str | None = None) -> Session:
    """The wallet, held for this command and unlocked (the passphrase, ``secret`` if the
    command has it already, is asked first, so that no one waits on a prompt); a key rotation
    an interrupted command left pending is settled first, as far as can be (cli.rotation)."""
    if secret is None:
        secret = passphrase()
    hold_wallet(ctx)
    wallet = Wallet.load(ctx.obj["wallet"])
    session = Session(wallet, wallet.unlock(secret), pending_key=wallet.unlock_pending(secret))
    settled = finish_rotation(session)
    if settled is not None:
        note(ctx, settled)
    return session


def entries_json(entries: list[SignedEntry]) -> list[dict[str, object]]:
    return [{"id": e.id, "height": e.height, "kind": e.kind, "time": e.time,
             "effects": [x.to_dict() for x in e.effects]} for e in entries]


def moved(ctx: click.Context, done: Submission, did: str, not_done: str) -> None:
    """Print what a submitted intent did; for a flow with a peer bank, where it stands.

    ``did`` says what was asked, as done (``paid 5 ... to ...``); ``not_done`` the same, as not
    done (``5 ... was not paid to ...``), for a flow the other bank refused, which is an error
    (exit 1) though the bank signed our entry: what was asked did not happen.
    """
    mine = done.entries[0]
    data: dict[str, Any] = {"entries": entries_json(done.entries), "entry": mine.id,
                            "flow": done.flow}
    flow = done.flow
    if flow is not None and flow["state"] == FlowState.RELEASED:
        raise NotDoneError(f"{not_done}: {flow['reason']}; what entry {mine.height} of your "
                           "chain held for it was released", **data)
    text = f"{did}: entry {mine.height} of your chain, signed by your bank ({mine.id[:16]})"
    if flow is not None:
        text += {
            FlowState.SETTLED: f"\nsettled: {flow['peer']} signed its side too",
            FlowState.PENDING: f"\npending: held until {flow['peer']} signs its side (it has until "
                       f"{when(flow['deadline'])} UTC); see where it stands with "
                       f"`tchain flow {mine.id[:16]}`",
        }.get(flow["state"], f"\n{flow['state']}")
    emit(ctx, data, text)
