"""``tchain demo``: the whole story on loopback, no set-up, in well under a minute.

Four real banks (``tchain validator serve``, LMDB in a temporary directory) on
127.0.0.1: bank1, bank2 and bank4 honest and peers of each other, bank3 a peer of bank1 started
with ``--fault skip-settle``. Real wallets with encrypted keys, every entry verified by the wallets;
each step prints one line and any failure ends the demo with exit 1.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from secrets import token_hex
from typing import Any

import click

from cli.errors import BankError, CliError
from cli.htlc import lock_on_chain
from cli.local import LocalBank
from cli.output import table
from cli.plans import propose_plan, sign_plan, swap_plan_file, view_plan
from cli.session import Session
from cli.wallet import Wallet
from tchain.htlc import hash_of
from tchain.model import SignedEntry
from tchain.proofs import unsettled, verify_proof
from tchain.route import Terms
from validator.audit import AuditReport
from validator.operator import deposit, list_proofs, run_audit, set_correspondent
from validator.peers import add_peer

__all__ = ["demo"]

B1, B2, B3, B4 = "bank1.example", "bank2.example", "bank3.example", "bank4.example"
USD, GBP, EUR, USD3, CHF = f"{B1}:USD", f"{B1}:GBP", f"{B2}:EUR", f"{B3}:USD", f"{B4}:CHF"
SETTLE_DEADLINE = 3.0  # seconds: short, so the cheat shows within the demo


class _Story:
    def __init__(self) -> None:
        self.step = 0
        self.started = time.monotonic()

    def do(self, what: str, action: Callable[[], Any]) -> Any:
        self.step += 1
        click.echo(f"[{self.step:2}] {what} ... ", nl=False)
        result = action()
        note = getattr(result, "flow", None)
        click.echo("ok" if not note else f"ok ({note['state']})")
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


def _until(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise CliError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.1)


def _wallet(base: Path, name: str) -> Session:
    wallet, key = Wallet.create(base / f"{name}.wallet", "demo passphrase")
    return Session(wallet, key)


def _offer_id(session: Session, asset: str, seller: str, remaining: str | None = None
              ) -> str:
    """Wait until the customer's bank lists an offer of ``asset`` from ``seller``'s bank (with
    ``remaining``, one with that much left of it)."""
    found = _until(f"an offer of {asset} at {seller}",
                   lambda: [o for o in session.offers(asset) if o["validator"] == seller
                            and remaining in (None, o.get("remaining"))])
    return str(found[0]["id"])


@click.command()
@click.option("--keep", is_flag=True, help="Keep the temporary directory (and print it).")
def demo(keep: bool) -> None:
    """Run four banks on loopback: payments in and across banks and through a correspondent,
    exchanges whole and in part, an atomic swap, a plan across three banks, a cheat."""
    base = Path(tempfile.mkdtemp(prefix="tchain-demo-"))
    story = _Story()
    banks = [LocalBank(base / "bank1", B1, assets=("USD", "GBP"),
                       settle_deadline=SETTLE_DEADLINE),
             LocalBank(base / "bank2", B2, assets=("EUR",), settle_deadline=SETTLE_DEADLINE),
             LocalBank(base / "bank3", B3, assets=("USD",), settle_deadline=SETTLE_DEADLINE,
                       fault="skip-settle"),
             LocalBank(base / "bank4", B4, assets=("CHF",), settle_deadline=SETTLE_DEADLINE)]
    b1, b2, b3, b4 = banks
    try:
        for bank, note in ((b1, ""), (b2, ""), (b3, ", started with --fault skip-settle"),
                           (b4, "")):
            story.do(f"start {bank.name} on {bank.url} (LMDB{note})", bank.start)
        for a, b in ((b1, b2), (b1, b3), (b1, b4), (b2, b4)):
            story.do(f"{a.name} and {b.name} pin each other's keys",
                     partial(_pin_each_other, a, b))
        homes = {"alice": b1, "bob": b1, "carol": b2, "dave": b3, "erin": b4}
        people = {n: _wallet(base, n) for n in homes}
        for name, bank in homes.items():
            story.do(f"{name} creates a wallet and registers at {bank.name}",
                     partial(people[name].register, name, bank.url,
                             legal_name=name.title() + " Example"))
        for name, amount, asset in (("alice", "100000", USD), ("bob", "50000", GBP),
                                    ("carol", "80000", EUR), ("dave", "50000", USD3),
                                    ("erin", "50000", CHF)):
            bank = homes[name]
            story.do(f"{bank.name} deposits {int(amount) / 100:.2f} {asset} to {name}",
                     partial(deposit, bank.config, name, amount, asset.split(":")[1]))
        alice, bob, carol, dave, erin = (people[n]
                                         for n in ("alice", "bob", "carol", "dave", "erin"))
        story.do("alice pays bob 250.00 USD inside bank1 (rent)",
                 lambda: alice.pay(f"bob*{B1}", "25000", USD, "rent"))
        story.do("alice pays carol 100.00 USD at bank2: both banks sign",
                 lambda: alice.pay(f"carol*{B2}", "10000", USD))
        story.do("alice offers 300.00 USD for 270.00 EUR; bank1 holds the USD",
                 lambda: alice.offer(("30000", USD), ("27000", EUR), 600))
        offer = story.do("carol finds the offer at her own bank (spread by bank1)",
                         lambda: _offer_id(carol, USD, B1))
        story.do("carol takes it: bank2 holds her EUR, bank1 settles, bank2 settles",
                 lambda: carol.take(offer))
        story.do("alice offers 200.00 USD for 180.00 EUR, in parts of at least 50.00 USD",
                 lambda: alice.offer(("20000", USD), ("18000", EUR), 600, min_fill="5000"))
        parts = story.do("carol finds it at bank2",
                         lambda: _offer_id(carol, USD, B1, remaining="20000"))
        story.do("carol takes 50.00 USD of it for 45.00 EUR: bank1 signs a fill, 150.00 stay "
                 "on offer", lambda: carol.take(parts, "5000"))
        story.do("bank2 hears what remains (offer_filled) and lists 150.00 USD",
                 lambda: _offer_id(carol, USD, B1, remaining="15000"))
        story.do("alice cancels the rest: bank1 releases only the 150.00 USD still held",
                 lambda: alice.cancel(parts))
        secret = token_hex(32)
        click.echo("     an atomic swap: alice's 50.00 USD for carol's 45.00 EUR, two locks on one "
                   "hash whose preimage alice alone knows")
        usd_lock = story.do("alice locks 50.00 USD for carol for 120 s (bank1 holds it)",
                            lambda: alice.lock(f"carol*{B2}", "5000", USD, hash_of(secret),
                                               120)).entries[0].id
        eur_lock = story.do("carol locks 45.00 EUR for alice for 60 s on the same hash",
                            lambda: carol.lock(f"alice*{B1}", "4500", EUR, hash_of(secret),
                                               60)).entries[0].id
        story.do("alice claims carol's lock with the preimage: bank1 credits her",
                 lambda: alice.claim(eur_lock, secret))
        shown = story.do("bank2 settles carol's lock: the preimage is now on her chain",
                         lambda: _until("the preimage on carol's chain",
                                        partial(_preimage_seen, carol, eur_lock)))
        story.do("carol claims alice's lock with it: the swap is done, all or nothing",
                 lambda: carol.claim(usd_lock, shown))
        swap = story.do("alice proposes a plan at bank1: she pays carol 20.00 USD, carol pays "
                        "erin 18.00 EUR, erin pays alice 15.00 CHF, all or nothing",
                        lambda: propose_plan(alice, _three_way_swap()))["id"]
        for name, session in (("alice", alice), ("carol", carol), ("erin", erin)):
            story.do(f"{name} checks the plan's log and signs her consent at her own bank",
                     partial(sign_plan, session, swap))
        story.do("bank1, bank2 and bank4 approve, hold, transfer, and approve each other's "
                 "receipts: the plan completes",
                 lambda: _until("the plan completed", lambda: view_plan(
                     erin, swap)["state"] == "completed"))
        story.do("bank1 publishes its terms as a correspondent: it takes bank3's USD at par, "
                 "pays its own, and keeps 0.10 a payment",
                 partial(set_correspondent, b1.config, Terms((USD3,), USD, 10)))
        route = story.do("dave at bank3 asks for a route to carol at bank2 (bank2 and bank3 "
                         "do not pin each other)",
                         lambda: dave.route_for(f"carol*{B2}", "2000", USD3))
        assert route is not None
        click.echo(f"     {route.describe()}")
        routed = story.do("dave signs the route and its cost: bank3 holds 20.10, bank1 holds "
                          "20.00 of its own USD for carol",
                          lambda: dave.pay(f"carol*{B2}", "2000", USD3, plan=route))
        story.do("bank2 credits carol; bank1 and bank3 settle their holds in turn: every book "
                 "moved, all or nothing",
                 lambda: _until("the route settled", lambda: dave.flow(
                     routed.entries[0].id)["state"] == "settled"))
        books = story.do("bank1's audit shows its positions with the banks on either side",
                         partial(run_audit, b1.config))
        for (peer, asset), position in sorted(books.positions.items()):
            if peer in (B2, B3) and asset in (USD, USD3):
                holder, amount = (peer, position.held) if position.held >= 0 else (
                    B1, -position.held)
                click.echo(f"     with {peer}: {holder} holds {amount} {asset}")
        story.refused("carol tries to pay bob 10000.00 EUR she does not have",
                      lambda: carol.pay(f"bob*{B1}", "1000000", EUR), "insufficient_funds")
        story.do("bob offers 100.00 GBP for 90.00 bank3 USD",
                 lambda: bob.offer(("10000", GBP), ("9000", USD3), 600))
        cheat = story.do("dave finds it at bank3", lambda: _offer_id(dave, GBP, B1))
        story.do("dave takes it; bank1 settles bob's side; bank3 never settles dave's",
                 lambda: dave.take(cheat))
        proofs = story.do(f"after the {SETTLE_DEADLINE:.0f} s deadline bank1 keeps a "
                          "non-settlement proof",
                          lambda: _until("a proof at bank1", lambda: list_proofs(b1.config)))
        summary = story.do("anyone verifies the proof offline (tchain proof verify)",
                           lambda: verify_proof(proofs[0]))
        text = summary.summary
        for bank in banks:
            text = text.replace(bank.config.signing_key().public_key, bank.name)
        click.echo(f"     {text}")
        rows = []
        for name, session in people.items():
            report = story.do(f"{name} syncs and verifies their chain", session.verify)
            for asset, b in sorted(report.state.balances.items()):
                rows.append([report.state.address, asset, str(b.balance), str(b.held),
                             str(report.state.height + 1)])
        audits: list[AuditReport] = [story.do(f"{bank.name} audits every chain",
                                              partial(run_audit, bank.config))
                                     for bank in banks]
        _report(rows, audits, unsettled(proofs))
        click.echo(f"\nAll {story.step} steps passed in {time.monotonic() - story.started:.1f} "
                   "s; every asset sums to zero over all banks.")
    except Exception:
        click.echo("FAILED")
        raise
    finally:
        for bank in banks:
            bank.stop()
        if keep:
            click.echo(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def _report(rows: list[list[str]], audits: list[AuditReport], unsettled: dict[str, int]
            ) -> None:
    click.echo("\nBalances (minor units), each computed by the customer's own wallet:")
    click.echo(table(["address", "asset", "balance", "held", "entries verified"], rows))
    totals: dict[str, int] = {}
    for audit in audits:
        if not audit.ok:
            raise CliError("an audit failed: " + "; ".join(audit.problems))
        for asset, total in audit.totals.items():
            totals[asset] = totals.get(asset, 0) + total
    click.echo("\nEach asset over all chains of all banks, and what bank3's default left in "
               "flight (the proof documents it):")
    sums = [[a, str(t), str(unsettled.get(a, 0)), str(t + unsettled.get(a, 0))]
            for a, t in sorted(totals.items())]
    click.echo(table(["asset", "sum over all chains", "unsettled (proof)", "total"], sums))
    if any(t + unsettled.get(a, 0) != 0 for a, t in totals.items()):
        raise CliError("an asset does not sum to zero over all banks")


def _three_way_swap() -> dict[str, Any]:
    """The plan file of a three-way swap across bank1, bank2 and bank4: three holds (all or
    nothing until they stand), then three transfers."""
    return swap_plan_file([(f"alice*{B1}", USD, "2000", f"carol*{B2}"),
                           (f"carol*{B2}", EUR, "1800", f"erin*{B4}"),
                           (f"erin*{B4}", CHF, "1500", f"alice*{B1}")], 120_000)


def _preimage_seen(session: Session, lock_id: str) -> str | None:
    """The preimage that opened our lock ``lock_id``, once our verified chain shows it."""
    session.sync()
    entries = [SignedEntry.from_bytes(raw) for raw in session.wallet.local_entries()]
    found = lock_on_chain(entries, lock_id)
    return None if found is None else found.get("preimage")


def _pin_each_other(a: LocalBank, b: LocalBank) -> None:
    add_peer(a.config, b.url)
    add_peer(b.config, a.url)

