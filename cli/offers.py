"""``tchain offer ...``: sell one asset for another, find offers, take or cancel them."""

from __future__ import annotations

from typing import Any

import click

from cli.common import moved, open_session
from cli.errors import UnreachableError
from cli.options import json_option
from cli.output import emit, note, table, when
from cli.params import AMOUNT, ASSET
from cli.session import Submission

__all__ = ["offer"]


@click.group()
def offer() -> None:
    """Exchange assets: create, list, take and cancel offers."""


@offer.command("create")
@click.option("--sell", type=(AMOUNT, ASSET), required=True, metavar="AMOUNT UAI",
              help="What you give: AMOUNT (minor units) of UAI; it is held until the offer "
                   "closes.")
@click.option("--buy", type=(AMOUNT, ASSET), required=True, metavar="AMOUNT UAI",
              help="What you want for it, all at once.")
@click.option("--expires-in", default=3600.0, show_default=True,
              type=click.FloatRange(1, 30 * 86_400), help="Seconds the offer stays open.")
@click.option("--min-fill", type=AMOUNT, metavar="N",
              help="Let takers take part of it, at least N of what you sell (or all that is "
                   "left), each part at your price rounded up; without it, whole only.")
@click.option("--window", type=click.FloatRange(1, 3600), metavar="SECONDS",
              help="Rank the takes of the offer's first SECONDS, best bid per unit first, "
                   "rather than take the first; takers may bid more than your price.")
@json_option
@click.pass_context
def create(ctx: click.Context, sell: tuple[str, str], buy: tuple[str, str],
           expires_in: float, min_fill: str | None, window: float | None) -> None:
    """Offer to sell --sell for --buy; your bank holds what you sell and tells its peers."""
    done = open_session(ctx).offer(sell, buy, expires_in, min_fill, window)
    moved(ctx, done, f"offer {done.entries[0].id} made: {sell[0]} {sell[1]} for "
                     f"{buy[0]} {buy[1]}", "the offer was not made")


@offer.command("list")
@click.option("--asset", type=ASSET, metavar="UAI", help="Only offers that sell or buy this asset.")
@json_option
@click.pass_context
def list_offers(ctx: click.Context, asset: str | None) -> None:
    """List the open offers your bank knows (its own and its peers'), signatures checked;
    with your bank unreachable, your own open offers from your verified copy."""
    session = open_session(ctx)
    header, offline = "", None
    try:
        found = session.offers(asset)
    except UnreachableError as e:
        report = session.read()
        found = [o for o in session.own_offers(report.state)
                 if asset is None or asset in (o["sell"]["asset"], o["buy"]["asset"])]
        offline = {"offline": True, "reason": e.message}
        note(ctx, f"{e.message}; these are your own open offers, from your verified copy")
        header = (f"your own open offers (as of height {report.state.height}; bank "
                  "unreachable, other banks' offers need it)\n")
    rows = [[o["id"][:16], o["validator"], f"{o['sell']['amount']} {o['sell']['asset']}",
             f"{o['buy']['amount']} {o['buy']['asset']}", _left(o), when(o["expires"])]
            for o in found]
    emit(ctx, {"offers": found, **(offline or {"offline": False})},
         header + (table(["offer", "bank", "sells", "for", "left", "expires (UTC)"], rows)
                   if rows else "no open offers"))


def _left(offer: dict[str, Any]) -> str:
    """What remains of an offer, and the least part it may be taken in."""
    parts = f" (parts of {offer['min_fill']}+)" if "min_fill" in offer else " (whole only)"
    if "window" in offer:
        parts += f", best bids of its first {offer['window'] / 1000:g} s"
    return f"{offer['remaining']}{parts}"


@offer.command("take")
@click.argument("offer_id")
@click.option("--amount", type=AMOUNT, metavar="N",
              help="Take only N (minor units) of what the offer sells, at its price rounded "
                   "up in the maker's favour; the offer must allow parts (its min_fill).")
@click.option("--price", type=AMOUNT, metavar="P",
              help="Give P (minor units) of what the offer buys: a bid, at least its price, "
                   "for an offer with a window (the best bids per unit win); default its "
                   "price.")
@json_option
@click.pass_context
def take(ctx: click.Context, offer_id: str, amount: str | None, price: str | None) -> None:
    """Take the offer OFFER_ID (any unique start of its id, as `offer list` shows it): give
    what it buys, get what it sells; all of it, or --amount of it."""
    done = open_session(ctx).take(offer_id, amount, price)
    full = _offer_named(done)
    did = f"took {'' if amount is None else f'{amount} of '}offer {full}"
    if done.flow is None and len(done.entries) == 1:  # an offer of your bank, still ranking
        did = (f"bid for {'' if amount is None else f'{amount} of '}offer {full}, held until "
               "its window closes and the best bids win")
    moved(ctx, done, did, f"offer {full} was not taken")


@offer.command("cancel")
@click.argument("offer_id")
@json_option
@click.pass_context
def cancel(ctx: click.Context, offer_id: str) -> None:
    """Withdraw your open offer OFFER_ID (any unique start of its id); what it held is yours
    to spend again."""
    done = open_session(ctx).cancel(offer_id)
    full = _offer_named(done)
    moved(ctx, done, f"cancelled offer {full}", f"offer {full} was not cancelled")


def _offer_named(done: Submission) -> str:
    """The whole id of the offer a take or cancel named (the customer may have typed less)."""
    intent = done.entries[0].intent
    assert intent is not None, "the session checked the entry carries our intent"
    return str(intent.doc["intent"]["body"]["offer"])
