"""``tchain demo``: the story on loopback, no set-up, in well under a minute.

A real bank (``tchain validator serve`` under gunicorn, LMDB in a temporary directory) on
127.0.0.1, real wallets with encrypted keys, every entry verified by the wallets; each step
prints one line and any failure ends the demo with exit 1.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cli.errors import BankError, CliError
from cli.local import LocalBank
from cli.output import table
from cli.session import Session
from cli.wallet import Wallet
from validator.config import BankConfig
from validator.operator import deposit, run_audit

__all__ = ["demo"]

BANK = "bank1.example"
USD = f"{BANK}:USD"


class _Story:
    def __init__(self) -> None:
        self.step = 0
        self.started = time.monotonic()

    def do(self, what: str, action: Callable[[], Any]) -> Any:
        self.step += 1
        click.echo(f"[{self.step:2}] {what} ... ", nl=False)
        result = action()
        click.echo("ok")
        return result

    def refused(self, what: str, action: Callable[[], Any], code: str) -> None:
        self.step += 1
        click.echo(f"[{self.step:2}] {what} ... ", nl=False)
        try:
            action()
        except BankError as e:
            if e.code != code:
                raise
            click.echo(f"refused as it must be: {e.message} ({e.code})")
            return
        raise CliError(f"step {self.step} should have been refused with {code}")


def _wallet(base: Path, name: str) -> Session:
    wallet, key = Wallet.create(base / f"{name}.wallet", "demo passphrase")
    return Session(wallet, key)


@click.command()
@click.option("--keep", is_flag=True, help="Keep the temporary directory (and print it).")
def demo(keep: bool) -> None:
    """Run one bank on loopback with three customers: deposits, payments, verification."""
    base = Path(tempfile.mkdtemp(prefix="tchain-demo-"))
    story = _Story()
    bank = LocalBank(base / "bank1", BANK, workers=2)
    try:
        story.do(f"start {BANK} on {bank.url} (gunicorn, 2 workers, LMDB in {base})",
                 bank.start)
        people = {n: _wallet(base, n) for n in ("alice", "bob", "carol")}
        for name, session in people.items():
            story.do(f"{name} creates a wallet and registers",
                     lambda s=session, n=name: s.register(n, bank.url,
                                                          legal_name=n.title() + " Example"))
        config = BankConfig.load(bank.data)
        story.do("the bank deposits 1000.00 USD to alice",
                 lambda: deposit(config, "alice", "100000", "USD"))
        story.do("the bank deposits 500.00 USD to bob",
                 lambda: deposit(config, "bob", "50000", "USD"))
        story.do("alice pays bob 250.00 USD (rent)",
                 lambda: people["alice"].pay(f"bob*{BANK}", "25000", USD, "rent"))
        story.do("bob pays carol 120.50 USD",
                 lambda: people["bob"].pay(f"carol*{BANK}", "12050", USD))
        story.do("alice issues 500 of her own POINTS to carol",
                 lambda: people["alice"].issue("POINTS", "500", f"carol*{BANK}"))
        story.do("carol withdraws 20.00 USD (redeems the bank's IOU)",
                 lambda: people["carol"].redeem("2000", USD))
        story.refused("carol tries to pay bob 1000.00 USD she does not have",
                      lambda: people["carol"].pay(f"bob*{BANK}", "100000", USD),
                      "insufficient_funds")
        rows = []
        for name, session in people.items():
            report = story.do(f"{name} syncs and verifies their chain against the bank",
                              session.verify)
            for asset, b in sorted(report.state.balances.items()):
                rows.append([report.state.address, asset, str(b.balance),
                             str(report.state.height + 1)])
        audit = story.do("the bank audits every chain", lambda: run_audit(config))
        click.echo("\nBalances (minor units), each computed by the customer's own wallet:")
        click.echo(table(["address", "asset", "balance", "entries verified"], rows))
        click.echo("\nSum of each asset over all chains (the bank's audit):")
        click.echo(table(["asset", "sum"], [[a, str(t)] for a, t in sorted(audit.totals.items())]))
        if not audit.ok or any(t != 0 for t in audit.totals.values()):
            raise CliError("the audit failed: " + "; ".join(audit.problems))
        click.echo(f"\nAll {story.step} steps passed in {time.monotonic() - story.started:.1f} s;"
                   " every asset sums to zero.")
    except Exception:
        click.echo("FAILED")
        raise
    finally:
        bank.stop()
        if keep:
            click.echo(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
