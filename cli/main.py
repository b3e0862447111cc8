"""The ``tchain`` command: the customer's wallet and the operator's ``tchain validator``.

Exit codes: 0 done; 1 refused or failed (one plain line on stderr, the server's message when the
bank refused; ``--verbose`` adds the traceback); 2 bad usage (click's own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.banks import Banks
from cli.bench import bench
from cli.chainfile import export_chain, import_chain
from cli.common import hold_wallet, moved, open_session
from cli.counterparties import party_of
from cli.demo import demo
from cli.errors import BankError, UnreachableError
from cli.history import HEADERS, history_rows
from cli.htlc import htlc
from cli.offers import offer
from cli.operator import validator
from cli.options import json_option, passphrase
from cli.output import emit, emit_error, note, table, when
from cli.params import ADDRESS, AMOUNT, ASSET, BANK_URL, DAILY_LIMIT, NAME
from cli.plans import plan
from cli.recoverycode import readable
from cli.rotation import rotate
from cli.routes import show_route
from cli.session import SyncReport, load_proof
from cli.wallet import Wallet, default_wallet_path
from cli.walletlock import DEFAULT_WAIT
from tchain.errors import TChainError
from tchain.proofs import verify_proof
from tchain.state import ChainState

__all__ = ["main", "root"]

class _Root(click.Group):
    """Turns every library error into one plain sentence and its exit code (1 refused or
    failed, 2 bad usage); under ``--json``, into one JSON object, usage errors too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # A subcommand's own --json is parsed with it: remember it for a usage error before.
        ctx.meta["tchain.json"] = "--json" in args
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            if not ctx.meta["tchain.json"]:
                raise
            emit_error(ctx, {"error": "usage", "message": e.format_message()}, "")
            ctx.exit(2)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            if not ctx.meta.get("tchain.json") and not (ctx.obj or {}).get("json"):
                raise
            emit_error(ctx, {"error": "usage", "message": e.format_message()}, "")
            ctx.exit(2)
        except (TChainError, OSError) as e:
            if (ctx.obj or {}).get("verbose"):
                raise
            if isinstance(e, TChainError):
                data = {"error": e.code, "message": e.message, **e.detail}
                text = e.message
                if isinstance(e, BankError) and e.code not in (BankError.code,
                                                                UnreachableError.code):
                    text += f" ({e.code})"
            else:
                text = f"{e.strerror}: {e.filename}" if e.filename else str(e)
                data = {"error": "os_error", "message": text}
            emit_error(ctx, data, text)
            ctx.exit(getattr(e, "exit_code", 1))


@click.group(cls=_Root)
@click.option("--wallet", "wallet_path", type=click.Path(dir_okay=False, path_type=Path),
              envvar="TCHAIN_WALLET", default=None,
              help="Wallet file [env TCHAIN_WALLET; default ~/.tchain/wallet.json].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--verbose", is_flag=True, help="Show tracebacks on errors.")
@click.option("--lock-wait", type=click.FloatRange(min=0), default=DEFAULT_WAIT,
              show_default=True, envvar="TCHAIN_LOCK_WAIT", metavar="SECONDS",
              help="How long to wait for another command using the same wallet "
                   "[env TCHAIN_LOCK_WAIT].")
@click.version_option(package_name="tchain")
@click.pass_context
def root(ctx: click.Context, wallet_path: Path | None, as_json: bool, verbose: bool,
         lock_wait: float) -> None:
    """TChain: your own ledger, co-signed by your bank."""
    ctx.ensure_object(dict)
    ctx.obj.update(wallet=wallet_path or default_wallet_path(), verbose=verbose,
                   lock_wait=lock_wait)
    ctx.obj.setdefault("json", as_json)


# --- wallet and customer commands --------------------------------------------------------

@root.group()
def wallet() -> None:
    """Manage the wallet file."""


@wallet.command("create")
@click.option("--force", is_flag=True, help="Overwrite an existing wallet (its key is lost).")
@json_option
@click.pass_context
def wallet_create(ctx: click.Context, force: bool) -> None:
    """Create a new wallet with a fresh key, encrypted by a passphrase."""
    secret = passphrase(confirm=True)
    hold_wallet(ctx)
    w, _ = Wallet.create(ctx.obj["wallet"], secret, force=force)
    emit(ctx, {"wallet": str(w.path), "public_key": w.public_key},
         f"created wallet {w.path}\npublic key {w.public_key}")


@wallet.command("rotate")
@json_option
@click.pass_context
def wallet_rotate(ctx: click.Context) -> None:
    """Give your chain a new owner key: the wallet keeps the new key once your bank's signed
    rotation verifies, and the old one no longer signs for your chain."""
    secret = passphrase()
    session = open_session(ctx, secret)
    entry = rotate(session, secret)
    emit(ctx, {"public_key": session.key.public_key, "entry": entry.id, "height": entry.height},
         f"rotated: your chain's owner key is now {session.key.public_key} (entry "
         f"{entry.height} of your chain, signed by your bank); the old key no longer signs "
         "for it")


@wallet.command("recover")
@click.argument("address")
@click.option("--validator", "url", required=True, envvar="TCHAIN_VALIDATOR", type=BANK_URL,
              help="The bank of ADDRESS, like http://127.0.0.1:8701.")
@click.option("--legal-name", required=True,
              help="The legal name of your KYC record at registration (by default your name).")
@click.option("--recovery-code", required=True,
              help="The recovery code `tchain register` printed (dashes and case do not matter).")
@json_option
@click.pass_context
def wallet_recover(ctx: click.Context, address: str, url: str, legal_name: str,
                   recovery_code: str) -> None:
    """Ask your bank to give the chain ADDRESS, whose key you lost, to this new wallet's key:
    it takes effect after the chain's recovery delay, unless the old key cancels it."""
    session = open_session(ctx)
    chain, effective = session.ask_recovery(address, url, legal_name=legal_name,
                                            recovery_code=recovery_code)
    emit(ctx, {"chain": chain, "effective": effective, "public_key": session.key.public_key},
         f"asked {address}'s bank for your chain: this wallet's key owns it from "
         f"{when(effective)}, unless its old key cancels first; then run "
         "`tchain sync --rebuild`")


@root.group()
def recovery() -> None:
    """A recovery of your chain's key that someone asked for."""


@recovery.command("cancel")
@json_option
@click.pass_context
def recovery_cancel(ctx: click.Context) -> None:
    """Refuse the pending recovery of your chain's key (you still hold your key)."""
    done = open_session(ctx).cancel_recovery()
    entry = done.entries[0]
    emit(ctx, {"entry": entry.id, "height": entry.height},
         f"cancelled: the recovery of your chain's key is refused (entry {entry.height})")


@root.command()
@click.argument("name", type=NAME)
@click.option("--validator", "url", required=True, envvar="TCHAIN_VALIDATOR", type=BANK_URL,
              help="The bank's API URL, like http://127.0.0.1:8701.")
@click.option("--legal-name", help="Your legal name for the bank's KYC record "
                                   "[default: NAME].")
@click.option("--no-kyc", is_flag=True, help="Register without a KYC record.")
@click.option("--daily-limit", multiple=True, type=DAILY_LIMIT,
              help="Most this chain may send of an asset per UTC day (repeatable).")
@click.option("--kyc-recipients", is_flag=True,
              help="Only allow payments to recipients with a KYC record.")
@click.option("--recovery-delay", type=click.FloatRange(1, 365 * 86_400),
              help="Seconds a recovery of your key with your bank's help waits before it "
                   "takes effect, while your key may cancel it [default: 7 days].")
@json_option
@click.pass_context
def register(ctx: click.Context, name: str, url: str, legal_name: str | None, no_kyc: bool,
             daily_limit: tuple[tuple[str, str], ...], kyc_recipients: bool,
             recovery_delay: float | None) -> None:
    """Open your chain at a bank as NAME; prints your address."""
    params: dict[str, Any] = {}
    if recovery_delay is not None:
        params["recovery_delay"] = str(int(recovery_delay * 1000))
    if daily_limit:
        params["daily_limit"] = dict(daily_limit)
    if kyc_recipients:
        params["kyc_recipients"] = True
    session = open_session(ctx)
    address, code = session.register(name, url,
                                      legal_name=None if no_kyc else (legal_name or name),
                                      params=params)
    text = f"registered {address}\nchain {session.wallet.chain}"
    if code is not None:
        text += (f"\nrecovery code {readable(code)}\n"
                 "Write it down and keep it away from this computer: with your legal name it "
                 "is what your bank asks for if you lose this wallet's key. It is shown once.")
    emit(ctx, {"address": address, "chain": session.wallet.chain, "recovery_code": code}, text)


def _warn_of_recovery(state: ChainState) -> None:
    """Someone asked the bank for this chain with its KYC record: the owner must know now,
    while the old key can still refuse it."""
    pending = state.recovery
    if pending is not None:
        click.echo(f"WARNING: someone asked your bank to give your chain to the key "
                   f"{pending.owner}, from {when(pending.at)}; if it was not you, run "
                   "`tchain recovery cancel` before then", err=True)


def _as_of(ctx: click.Context, report: SyncReport) -> str:
    """How current a read is: verified with the bank now, or the copy as it stood (said on
    stderr too, with why the bank was not asked)."""
    if report.offline is None:
        return f"height {report.state.height}, verified"
    note(ctx, f"{report.offline}; this is your own verified copy")
    return f"as of height {report.state.height}; bank unreachable"


def _offline(report: SyncReport) -> dict[str, Any]:
    out: dict[str, Any] = {"offline": report.offline is not None}
    if report.offline is not None:
        out["reason"] = report.offline
    return out


@root.command()
@json_option
@click.pass_context
def balance(ctx: click.Context) -> None:
    """Show your balances, from your own verified copy of your chain (synced with your bank
    when it answers)."""
    report = open_session(ctx).read()
    _warn_of_recovery(report.state)
    balances = {a: b.to_dict() for a, b in sorted(report.state.balances.items())}
    rows = [[a, b["balance"], b["held"], str(int(b["balance"]) - int(b["held"]))]
            for a, b in balances.items()]
    emit(ctx, {"address": report.state.address, "height": report.state.height,
               "balances": balances, **_offline(report)},
         f"{report.state.address} ({_as_of(ctx, report)})\n"
         + table(["asset", "balance", "held", "available"], rows))


@root.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many recent entries.")
@json_option
@click.pass_context
def history(ctx: click.Context, limit: int) -> None:
    """Show your chain's recent entries, verified."""
    session = open_session(ctx)
    entries, report = session.history()
    entries = entries[-limit:]
    names = session.addresses([p for p in map(party_of, entries) if p is not None],
                              ask=report.offline is None)
    rows, as_json = history_rows(entries, names, when)
    header = "" if report.offline is None else f"{report.state.address} " \
        f"({_as_of(ctx, report)})\n"
    emit(ctx, {"entries": as_json, **_offline(report)},
         header + table(HEADERS, rows))


@root.command()
@click.argument("address", type=ADDRESS)
@click.argument("amount", type=AMOUNT)
@click.argument("uai", type=ASSET)
@click.option("--memo", help="A note for the recipient (at most 256 characters).")
@click.option("--via", multiple=True, metavar="BANK", help="Go through this correspondent "
              "bank (repeatable, in order); a route is found when the payee's bank is not "
              "a peer of yours.")
@click.option("--dry-run", is_flag=True, help="Print the route and what it costs; sign "
              "nothing.")
@json_option
@click.pass_context
def pay(ctx: click.Context, address: str, amount: str, uai: str, memo: str | None,
        via: tuple[str, ...], dry_run: bool) -> None:
    """Pay AMOUNT (minor units) of asset UAI to ADDRESS (alice*bank1.example)."""
    session = open_session(ctx)
    plan = session.route_for(address, amount, uai, via)
    if dry_run:
        show_route(ctx, plan, address, amount, uai)
        return
    done = session.pay(address, amount, uai, memo, plan=plan)
    pays = amount if plan is None else str(plan.pays)
    route = "" if plan is None else f" via {', '.join(h.bank.name for h in plan.hops)}"
    moved(ctx, done, f"paid {pays} {uai} to {address}{route}",
          f"{pays} {uai} was not paid to {address}{route}")


@root.command()
@click.argument("code")
@click.argument("amount", type=AMOUNT)
@click.option("--to", "to_address", required=True, type=ADDRESS,
              help="The address that receives the units.")
@click.option("--memo", help="A note for the recipient.")
@json_option
@click.pass_context
def issue(ctx: click.Context, code: str, amount: str, to_address: str, memo: str | None) -> None:
    """Issue AMOUNT of your own asset CODE (yourname*bank:CODE) to an address."""
    done = open_session(ctx).issue(code, amount, to_address, memo)
    moved(ctx, done, f"issued {amount} {code} to {to_address}",
          f"{amount} {code} was not issued to {to_address}")


@root.command()
@click.argument("amount", type=AMOUNT)
@click.argument("uai", type=ASSET)
@click.option("--memo", help="A note for the issuer.")
@json_option
@click.pass_context
def redeem(ctx: click.Context, amount: str, uai: str, memo: str | None) -> None:
    """Give AMOUNT of asset UAI back to its issuer (a withdrawal, for a bank's IOU)."""
    done = open_session(ctx).redeem(amount, uai, memo)
    moved(ctx, done, f"redeemed {amount} {uai}", f"{amount} {uai} was not redeemed")


@root.command()
@click.argument("entry_id")
@json_option
@click.pass_context
def flow(ctx: click.Context, entry_id: str) -> None:
    """Show where a payment or take across banks stands: ENTRY_ID is any unique start of the
    id of an entry it made (the 16 characters `tchain pay` prints will do)."""
    state = open_session(ctx).flow(entry_id)
    reason = f": {state['reason']}" if state.get("reason") else ""
    emit(ctx, state, f"{state['type']} with {state['peer']}: {state['state']}{reason}")


@root.command()
@click.option("--rebuild", is_flag=True,
              help="Fetch your whole chain again and verify it from its genesis: mends a copy "
                   "that is missing or does not verify (the old copy is kept beside it).")
@json_option
@click.pass_context
def sync(ctx: click.Context, rebuild: bool) -> None:
    """Fetch new entries from your bank, verify them and keep them."""
    session = open_session(ctx)
    if rebuild:
        report, kept_old = session.rebuild()
        kept = f"; the old copy is kept as {kept_old}" if kept_old else ""
        emit(ctx, {"height": report.state.height, "rebuilt": True, "entries": report.new_entries,
                   "old_copy": None if kept_old is None else str(kept_old)},
             f"rebuilt your copy from {session.wallet.require_chain()[1].name}: "
             f"{report.new_entries} entries verified from the genesis, height "
             f"{report.state.height}{kept}")
        return
    report = session.sync()
    _warn_of_recovery(report.state)
    emit(ctx, {"height": report.state.height, "new_entries": report.new_entries},
         f"synced: {report.new_entries} new entries, height {report.state.height}, verified")


@root.command()
@json_option
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Verify your whole chain offline and compare it with every entry the bank serves."""
    report = open_session(ctx).verify()
    compared = "" if report.offline is None else \
        f" ({_as_of(ctx, report)}: not compared with your bank)"
    emit(ctx, {"valid": True, "height": report.state.height, "head": report.state.head,
               "compared": report.offline is None, **_offline(report)},
         f"valid: {report.state.height + 1} entries verified, head {report.state.head}"
         + compared)


@root.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def export_cmd(ctx: click.Context, file: Path) -> None:
    """Write your verified chain to FILE (signed entries, one per line): a backup anyone can
    verify with the bank's key."""
    hold_wallet(ctx)
    count = export_chain(Wallet.load(ctx.obj["wallet"]), file)
    emit(ctx, {"entries": count, "file": str(file)}, f"exported {count} entries to {file}")


@root.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def import_cmd(ctx: click.Context, file: Path) -> None:
    """Restore your chain from an export: every entry is verified first, and nothing is kept
    unless the whole file agrees with what the wallet holds."""
    hold_wallet(ctx)
    added = import_chain(Wallet.load(ctx.obj["wallet"]), file)
    emit(ctx, {"added": added, "file": str(file)}, f"imported {added} new entries from {file}")


@root.command("lookup")
@click.argument("address", type=ADDRESS)
@click.option("--validator", "url", envvar="TCHAIN_VALIDATOR", type=BANK_URL,
              help="The bank to start from [default: your wallet's bank].")
@json_option
@click.pass_context
def lookup_cmd(ctx: click.Context, address: str, url: str | None) -> None:
    """Resolve ADDRESS at its own bank, found through yours (or the bank at --validator) as
    payments find it; the record is checked against the key your bank pinned for it."""
    if url is None:
        _, bank = Wallet.load(ctx.obj["wallet"]).require_chain()
        banks = Banks(bank.url, name=bank.name, key=bank.key, mine=True)
    else:
        banks = Banks(url)
    record = banks.record(address)
    emit(ctx, record, table(["field", "value"], sorted(record.items())))


@root.group()
def proof() -> None:
    """Check proofs of misbehaviour."""


@proof.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def proof_verify(ctx: click.Context, file: Path) -> None:
    """Check a proof offline: exit 0 if it holds, 1 and why if not."""
    summary = verify_proof(load_proof(file))
    emit(ctx, {"valid": True, "type": summary.type, "culprit": summary.culprit,
               "summary": summary.summary}, f"valid {summary.type} proof: {summary.summary}")


root.add_command(validator)
root.add_command(offer)
root.add_command(htlc)
root.add_command(plan)
root.add_command(demo)
root.add_command(bench)


def main() -> None:
    """Console entry point."""
    root(prog_name="tchain")
