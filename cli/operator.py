"""``tchain validator ...``: the bank operator's commands."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.options import data_option, json_option
from cli.output import emit, table
from cli.serve import serve
from tchain.encoding import canonical
from tchain.errors import EncodingError
from tchain.proofs import verify_proof
from tchain.route import Terms
from validator.config import BankConfig, add_asset, init_bank
from validator.operator import (
    add_regulator,
    bank_names,
    deposit,
    list_proofs,
    list_regulators,
    remove_regulator,
    run_audit,
    set_correspondent,
)
from validator.peers import add_peer, list_peers, remove_peer

__all__ = ["validator"]

def on_bank(group: click.Group, name: str) -> Callable[[Callable[..., None]], click.Command]:
    """A command of ``group`` named ``name`` that works on a bank's data directory: it takes
    ``--data`` and ``--json``, and the context first."""
    def command(f: Callable[..., None]) -> click.Command:
        return group.command(name)(data_option(json_option(click.pass_context(f))))
    return command


@click.group()
def validator() -> None:
    """Run a bank: init, serve, deposit; its assets, peers and regulators; audit, proofs."""


validator.add_command(serve)


@on_bank(validator, "init")
@click.option("--name", required=True, help="The bank's name, a DNS name: bank1.example.")
@click.option("--url", required=True, help="The API URL customers and peers reach it at.")
@click.option("--asset", "assets", multiple=True, default=("USD",), show_default=True,
              help="An asset CODE the bank issues IOUs of (repeatable).")
def init(ctx: click.Context, data: Path, name: str, url: str, assets: tuple[str, ...]) -> None:
    """Create a new bank: its key, its store and its own chain."""
    config = init_bank(data, name=name, url=url, assets=assets)
    key = config.signing_key().public_key
    emit(ctx, {"name": config.name, "url": config.url, "public_key": key,
               "assets": config.uais},
         f"initialised {config.name} in {data}\npublic key {key}\nserve it with: "
         f"tchain validator serve --data {data}")


@on_bank(validator, "deposit")
@click.argument("address")
@click.argument("amount")
@click.argument("uai")
@click.option("--memo", help="A note on the deposit.")
def deposit_cmd(ctx: click.Context, data: Path, address: str, amount: str, uai: str,
                memo: str | None) -> None:
    """Issue the bank's IOU: AMOUNT (minor units) of UAI (or CODE) to ADDRESS."""
    outcome = deposit(BankConfig.load(data), address, amount, uai, memo)
    credit = outcome.entries[-1]
    emit(ctx, {"entries": [e.id for e in outcome.entries], "chain": credit.chain_id,
               "height": credit.height},
         f"deposited {amount} {uai} to {address} (entry {credit.height} of its chain)")


@validator.group()
def asset() -> None:
    """Manage the assets the bank issues IOUs of."""


@on_bank(asset, "list")
def asset_list(ctx: click.Context, data: Path) -> None:
    """List the assets the bank issues IOUs of."""
    uais = BankConfig.load(data).uais
    emit(ctx, uais, "\n".join(uais))


@on_bank(asset, "add")
@click.argument("code")
def asset_add(ctx: click.Context, data: Path, code: str) -> None:
    """Issue IOUs of CODE too (bank:CODE): deposits of it, and the well-known lists it."""
    config, added = add_asset(BankConfig.load(data), code)
    uai = f"{config.name}:{code}"
    emit(ctx, {"asset": uai, "added": added, "assets": config.uais},
         f"{uai} {'added' if added else 'was already issued here'}")


@validator.group()
def peer() -> None:
    """Manage the peer banks this bank trusts."""


@on_bank(peer, "add")
@click.argument("url")
def peer_add(ctx: click.Context, data: Path, url: str) -> None:
    """Trust the bank at URL: pin the name and key its signed well-known document gives."""
    record, added = add_peer(BankConfig.load(data), url)
    emit(ctx, {**record, "added": added},
         f"peer {record['name']} {'pinned' if added else 'was already pinned'} with key "
         f"{record['key']}")


@on_bank(peer, "list")
def peer_list(ctx: click.Context, data: Path) -> None:
    """List the peer banks this bank trusts, with their pinned keys."""
    peers = list_peers(BankConfig.load(data))
    emit(ctx, peers, table(["name", "url", "key"], [[p["name"], p["url"], p["key"]]
                                                     for p in peers]) if peers else "no peers")


@on_bank(peer, "remove")
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Remove it even while flows with it are in flight or the position with it "
                   "is not zero (they stay as they are until it is pinned again).")
def peer_remove(ctx: click.Context, data: Path, name: str, force: bool) -> None:
    """Stop trusting the peer bank NAME (refused while money is between the two banks)."""
    removal = remove_peer(BankConfig.load(data), name, force=force)
    if removal.owed:
        click.echo(f"WARNING: {name} was removed with {removal.owed}. Nothing was undone: the "
                   "holds stay open, the sender keeps their messages until the peer is pinned "
                   "again, and the positions stay in the books (validator audit lists them).",
                   err=True)
    emit(ctx, {**removal.record, "removed": True, "in_flight": removal.in_flight,
               "positions": [{"asset": a, "held": str(p.held), "incoming": str(p.incoming),
                              "outgoing": str(p.outgoing)} for a, p in removal.positions]},
         f"peer {name} removed (its key {removal.record['key']} is no longer trusted)")


@on_bank(validator, "correspond")
@click.option("--accept", "accepts", multiple=True, metavar="UAI",
              help="An IOU this bank takes at par from the bank before it (repeatable).")
@click.option("--pay", metavar="UAI", help="The IOU it hands on: its own, or the next bank's "
              "it holds.")
@click.option("--fee", default="0", show_default=True, help="What it keeps of each payment, "
              "in minor units.")
@click.option("--limit", metavar="AMOUNT", help="The most of any one peer's IOU it will hold "
              "(a payment past it is refused) [default: no limit].")
@click.option("--stop", is_flag=True, help="Withdraw the terms: hand on no more payments.")
def correspond(ctx: click.Context, data: Path, accepts: tuple[str, ...], pay: str | None,
               fee: str, limit: str | None, stop: bool) -> None:
    """Hand payments on between peers that do not pin each other, on published terms."""
    config = BankConfig.load(data)
    if stop:
        set_correspondent(config, None)
        emit(ctx, {"correspondent": None}, f"{config.name} hands on no more payments")
        return
    if not accepts or pay is None:
        raise click.UsageError("give --accept (one or more) and --pay, or --stop")
    try:
        terms = Terms.from_dict({"accept": list(accepts), "pay": pay, "fee": fee,
                                 **({} if limit is None else {"limit": limit})})
    except EncodingError as e:
        raise click.UsageError(e.message) from e
    set_correspondent(config, terms)
    emit(ctx, {"correspondent": terms.to_dict()},
         f"{config.name} takes {', '.join(terms.accept)} at par and pays {terms.pay}, "
         f"keeping {terms.fee}")


@validator.group()
def regulator() -> None:
    """Manage the regulator keys that may read every chain."""


@on_bank(regulator, "add")
@click.argument("public_key")
def regulator_add(ctx: click.Context, data: Path, public_key: str) -> None:
    """Let PUBLIC_KEY (64 hex) read every chain at this bank."""
    added = add_regulator(BankConfig.load(data), public_key)
    emit(ctx, {"public_key": public_key, "added": added},
         f"regulator {public_key} {'added' if added else 'was already registered'}")


@on_bank(regulator, "list")
def regulator_list(ctx: click.Context, data: Path) -> None:
    """List the regulator keys that may read every chain at this bank."""
    keys = list_regulators(BankConfig.load(data))
    emit(ctx, keys, "\n".join(keys) if keys else "no regulators")


@on_bank(regulator, "remove")
@click.argument("public_key")
def regulator_remove(ctx: click.Context, data: Path, public_key: str) -> None:
    """Take back PUBLIC_KEY's right to read every chain (from its next request on)."""
    remove_regulator(BankConfig.load(data), public_key)
    emit(ctx, {"public_key": public_key, "removed": True}, f"regulator {public_key} removed")


@on_bank(validator, "audit")
def audit(ctx: click.Context, data: Path) -> None:
    """Re-verify every chain and check that each asset sums to zero; exit 1 if not."""
    report = run_audit(BankConfig.load(data))
    rows = [[a, str(t), str(report.held_by_peers(a)), str(report.held.get(a, 0))]
            for a, t in sorted(report.totals.items())]
    text = (f"{report.chains} chains, {report.entries} entries re-verified\n"
            + table(["asset", "sum over chains", "held by peers", "held for flows"], rows))
    if report.positions:  # what crossed with each peer: a correspondent's, both sides
        text += "\npositions with peers (held: what the peer holds of the asset by us)\n" + \
            table(["peer", "asset", "held", "incoming", "outgoing"],
                  [[peer, asset, str(p.held), str(p.incoming), str(p.outgoing)]
                   for (peer, asset), p in sorted(report.positions.items())])
    if report.in_flight:
        text += "\nin flight:\n" + "\n".join(f"- {f}" for f in report.in_flight)
    text += f"\nproofs against peers kept: {report.proofs}"
    if report.problems:
        text += "\nPROBLEMS:\n" + "\n".join(f"- {p}" for p in report.problems)
    emit(ctx, {"ok": report.ok, "chains": report.chains, "entries": report.entries,
               "totals": {a: str(t) for a, t in report.totals.items()},
               "positions": [{"peer": peer, "asset": asset, "held": str(p.held),
                              "incoming": str(p.incoming), "outgoing": str(p.outgoing)}
                             for (peer, asset), p in sorted(report.positions.items())],
               "held": {a: str(t) for a, t in report.held.items()},
               "in_flight": report.in_flight, "proofs": report.proofs,
               "problems": report.problems}, text)
    if not report.ok:
        ctx.exit(1)


@on_bank(validator, "proofs")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write each proof to a file of its own in this folder (made if missing): "
                   "the file `tchain proof verify FILE` checks.")
def proofs(ctx: click.Context, data: Path, out: Path | None) -> None:
    """List the proofs of misbehaviour this bank holds against its peers; --json prints them
    as a list of proof documents, --out writes them one to a file."""
    config = BankConfig.load(data)
    found = list_proofs(config)
    names = bank_names(config)
    lines = []
    for proof in found:
        summary = verify_proof(proof, names=names)
        lines.append(f"{summary.type}: {summary.summary}")
        if out is not None:
            lines.append(f"  written to {write_proof(out, proof)}")
    if found and out is None:
        lines.append("(--out DIR writes each to a file that `tchain proof verify FILE` checks)")
    emit(ctx, found, "\n".join(lines) if found else "no proofs")


def write_proof(folder: Path, proof: dict[str, Any]) -> Path:
    """Write one proof document as its canonical JSON, named by its type and its digest (the
    same proof is written to the same file, again and again)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = canonical(proof)
    path = folder / f"{proof['type']}-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    path.write_bytes(raw + b"\n")
    return path
