"""Execution plans driven over HTTP for the fault campaigns (ADR 0010): a DvP between two
banks watched by a third, and a three-way swap; each customer consents at their own bank as
soon as it has the plan. Then the check that, once the banks are quiet, every plan ended the
same way (completed, compensated or failed) at every bank that keeps it."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cli.client import BankClient
from cli.errors import BankError
from cli.local import LocalBank
from tchain.clock import now_ms
from tchain.intents import sign_intent
from tchain.plans import Execution, Plan, consents_of
from tests.helpers import Customer
from tests.quietbanks import wait_quiet
from tests.realbanks import eventually, read
from validator.plans import Kept

ENDED = ("completed", "compensated", "failed")
DEADLINE_MS = 25_000  # each plan's: long enough to outlast a round's faults, mostly


@dataclass(frozen=True)
class Account:
    bank: LocalBank
    customer: Customer
    asset: str

    @property
    def address(self) -> str:
        return f"{self.customer.name}*{self.bank.name}"

    def client(self) -> BankClient:
        return BankClient(self.bank.url, self.customer.key, bank=self.bank.name)


@dataclass
class Proposed:
    """The plans proposed, and the requests whose outcome a cut connection or a killed bank
    hid from the client."""

    plans: list[str] = field(default_factory=list)
    unknown: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def dvp(a: Account, b: Account, observer: LocalBank, deadline_in: int) -> dict[str, Any]:
    """``a`` pays 10 of its asset for 1 of ``b``'s; ``observer`` only watches."""
    return {"deadline_in": deadline_in,
            "participants": [{"bank": a.bank.name, "role": "contributor"},
                             {"bank": b.bank.name, "role": "contributor"},
                             {"bank": observer.name, "role": "observer"}],
            "instructions": [
                {"op": "hold", "account": a.address, "asset": a.asset, "amount": "10"},
                {"op": "hold", "account": b.address, "asset": b.asset, "amount": "1"},
                {"op": "transfer", "hold": 1, "to": b.address},
                {"op": "transfer", "hold": 2, "to": a.address}]}


def swap(accounts: list[Account], deadline_in: int, short: Account | None = None
         ) -> dict[str, Any]:
    """Each account gives 5 of its asset to the next one's customer, all or nothing; with
    ``short``, that account is asked for more than it has (so the holds before its own are
    compensated)."""
    n = len(accounts)
    return {"deadline_in": deadline_in,
            "participants": [{"bank": a.bank.name, "role": "contributor"} for a in accounts],
            "instructions": [
                *({"op": "hold", "account": a.address, "asset": a.asset,
                   "amount": "10000000000" if a is short else "5"} for a in accounts),
                *({"op": "transfer", "hold": i + 1, "to": accounts[(i + 1) % n].address}
                  for i in range(n))]}


def plan_threads(accounts: list[Account], rng: random.Random, proposed: Proposed
                 ) -> list[threading.Thread]:
    """A round's plans, started: a DvP between the first two accounts' banks (the third's
    watching) proposed by the first, and a three-way swap proposed by a random account, one
    time in three with a random account short of funds."""
    a1, a2, a3 = accounts
    short = rng.choice(accounts) if rng.random() < 1 / 3 else None
    work = [(dvp(a1, a2, a3.bank, DEADLINE_MS), a1, [a1, a2]),
            (swap(accounts, DEADLINE_MS, short), rng.choice(accounts), accounts)]
    threads = [threading.Thread(target=run_plan, args=(*w, proposed)) for w in work]
    for t in threads:
        t.start()
    return threads


def run_plan(doc: dict[str, Any], proposer: Account, signers: list[Account],
             proposed: Proposed) -> None:
    """Propose ``doc`` at the proposer's bank, then have each signer consent at their own bank
    once it knows the plan, until the plan's deadline."""
    until = now_ms() + int(doc["deadline_in"])
    try:
        plan_id = str(proposer.client().plan_propose(doc)["id"])
    except BankError:  # cut or killed: the plan may or may not exist
        with proposed.lock:
            proposed.unknown += 1
        return
    with proposed.lock:
        proposed.plans.append(plan_id)
    threads = [threading.Thread(target=_consent, args=(s, plan_id, until, proposed))
               for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive()


def _consent(signer: Account, plan_id: str, until: int, proposed: Proposed) -> None:
    client = signer.client()
    while now_ms() < until:
        try:
            shown = client.plan(plan_id)
            plan = Plan.from_dict(shown["plan"])
            assert plan.id == plan_id
            consents = [sign_intent(signer.customer.key, "plan", signer.customer.chain, 0,
                                    now_ms(), body)
                        for _, body in consents_of(plan, signer.address)]
            client.plan_consent(plan_id, {"consents": consents})
            return
        except BankError as e:  # not there yet (not_found), or cut or restarting: try again
            if e.code not in ("not_found", "unreachable", "bank_error", "unavailable"):
                with proposed.lock:
                    proposed.unknown += 1
                return
            time.sleep(0.3)


def executions(bank: LocalBank) -> dict[str, Execution]:
    """Every plan ``bank`` keeps, replayed from its log as the bank would."""
    def get(r: Any) -> dict[str, Execution]:
        keys = {bank.name: bank.config.signing_key().public_key,
                **{p["name"]: p["key"] for p in r.peers()}}
        replayed = (Execution.replay(Kept.from_dict(rec).log, keys)
                    for _, rec in r.records("plans") if "log" in rec)  # not a hold's index
        return {ex.plan.id: ex for ex in replayed}
    return dict(read(bank, get))


def plans_ended(banks: list[LocalBank]) -> bool:
    return all(ex.state in ENDED for bank in banks for ex in executions(bank).values())


def plans_once_quiet(banks: list[LocalBank], proposed: Proposed) -> Counter[str]:
    """Wait for every plan to end and the banks to fall quiet, then check the plans agree."""
    eventually(lambda: plans_ended(banks), timeout=90)
    wait_quiet(*banks)
    return assert_plans_agree(banks, proposed)


def assert_plans_agree(banks: list[LocalBank], proposed: Proposed) -> Counter[str]:
    """Every plan ended, the same way at every bank of it that keeps it, none ``failed`` (the
    log of a failed plan blames a bank, and these banks are honest; a round's faults heal
    long before a plan's deadline), and every plan a client was answered with is kept by its
    proposer's bank."""
    states: dict[str, set[str]] = {}
    for bank in banks:
        for plan_id, ex in executions(bank).items():
            assert ex.state in ENDED, (bank.name, plan_id, ex.state)
            states.setdefault(plan_id, set()).add(ex.state)
    for plan_id, seen in states.items():
        assert len(seen) == 1, (plan_id, seen)
        assert seen != {"failed"}, f"plan {plan_id} failed between honest banks"
    assert set(proposed.plans) <= set(states), set(proposed.plans) - set(states)
    return Counter(next(iter(seen)) for seen in states.values())
