"""Cross-bank hash-time locks driven over HTTP for the fault campaigns (ADR 0008): each lock
is claimed soon, claimed racing its expiry, or left to expire; and the check that, once the
banks are quiet, the payer's bank and the payee's bank agree on every lock."""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from cli.local import LocalBank
from tchain.clock import now_ms
from tchain.htlc import hash_of
from tchain.model import SignedEntry
from tests.helpers import Customer
from tests.quietbanks import entries_by_evidence, records, wait_quiet
from tests.realbanks import eventually, read, submit

SCENARIOS = ("claim", "race", "none")


@dataclass(frozen=True)
class Pair:
    """A payer at one bank who locks for a payee at another (each only in this pair, so their
    intents never race for a seq)."""

    payer_bank: LocalBank
    payer: Customer
    payee_bank: LocalBank
    payee: Customer
    asset: str


@dataclass
class Told:
    """What clients were answered: the locks made, the entries their banks signed for them
    (bytes by bank, chain and height), and requests whose outcome a cut connection hid."""

    locks: dict[str, str] = field(default_factory=dict)  # lock id -> scenario
    claimed: set[str] = field(default_factory=set)  # lock ids a claim was answered 201 for
    entries: dict[tuple[str, str, int], bytes] = field(default_factory=dict)  # bank, chain, h
    unknown: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, bank: LocalBank, answer: requests.Response) -> list[SignedEntry]:
        docs = answer.json()["entries"] if answer.status_code in (201, 202) else []
        entries = [SignedEntry.from_dict(d) for d in docs]
        with self.lock:
            for e in entries:
                self.entries[(bank.name, e.chain, e.height)] = e.to_bytes()
        return entries

    def missing(self, banks: list[LocalBank]) -> list[tuple[str, str, int]]:
        """The entries clients were answered with that their bank no longer holds as sent."""
        by_name = {b.name: b for b in banks}
        return [key for key, raw in self.entries.items()
                if read(by_name[key[0]], lambda r, key=key: r.entry(*key[1:])) != raw]


def lock_round(pairs: list[Pair], rng: random.Random, told: Told) -> None:
    """One lock per pair, all at once, each with a random scenario; returns when every claim
    was tried (the locks themselves may still be deciding)."""
    plans = [(pair, rng.choice(SCENARIOS), rng.randint(1, 30), rng.uniform(10.5, 12),
              rng.uniform(-0.5, 0.5)) for pair in pairs]
    threads = [threading.Thread(target=_one_lock, args=(told, *plan)) for plan in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()


def _one_lock(told: Told, pair: Pair, scenario: str, amount: int, life: float,
              skew: float) -> None:
    preimage = os.urandom(32).hex()
    expires = now_ms() + int(life * 1000)
    try:
        r = submit(pair.payer_bank, pair.payer, "lock", {
            "to": pair.payee.chain, "to_validator": pair.payee_bank.name, "asset": pair.asset,
            "amount": str(amount), "hash": hash_of(preimage), "expires": expires})
    except requests.RequestException:  # its bank was killed: the lock may or may not exist
        with told.lock:
            told.unknown += 1
        return
    assert r.status_code in (201, 202), r.text
    lock = told.keep(pair.payer_bank, r)[0]
    with told.lock:
        told.locks[lock.id] = scenario
    if scenario == "none":
        return
    if scenario == "race":  # claimed from just before to just after the expiry
        time.sleep(max(0.0, (expires - now_ms()) / 1000 + skew))
    _claim(told, pair, lock.id, preimage, until=expires + 1500)


def _claim(told: Told, pair: Pair, lock_id: str, preimage: str, until: int) -> None:
    """Claim until the payee's bank answers for good: it may not have the lock yet."""
    while now_ms() < until:
        try:
            r = submit(pair.payee_bank, pair.payee, "claim",
                       {"lock": lock_id, "preimage": preimage})
        except requests.RequestException:
            with told.lock:
                told.unknown += 1
            time.sleep(0.3)
            continue
        if r.status_code == 201:
            told.keep(pair.payee_bank, r)
            with told.lock:
                told.claimed.add(lock_id)
            return
        # not_found: the lock has not reached the payee's bank (yet); 503: it is restarting
        assert r.status_code in (404, 409, 422, 503), r.text
        if r.status_code in (409, 422):  # decided expired, or past the expiry
            return
        time.sleep(0.3)


def locks_decided(banks: list[LocalBank]) -> bool:
    """No lock still open at a payee's bank (each decides at its expiry by its own clock)."""
    return not any(rec["state"] == "open" for bank in banks
                   for rec in records(bank, "locks").values())


def locks_once_quiet(banks: list[LocalBank], told: Told) -> dict[str, int]:
    """Wait for the banks to fall quiet and every lock to be decided, then check the banks
    agree on every lock."""
    wait_quiet(*banks)
    eventually(lambda: locks_decided(banks), timeout=30)
    return assert_locks_agree(banks, told)


def assert_locks_agree(banks: list[LocalBank], told: Told) -> dict[str, int]:
    """Every lock settled at its payer's bank was claimed once at its payee's bank; every lock
    released there was never credited; every claim a client was answered settled its lock."""
    by_name = {b.name: b for b in banks}
    outcome = {"claimed": 0, "refunded": 0}
    claims = {b.name: entries_by_evidence(b, "claim", "lock") for b in banks}
    kept = {b.name: records(b, "locks") for b in banks}
    seen: set[str] = set()
    for payer_bank in banks:
        for lock_id, flow in records(payer_bank, "flows").items():
            if flow["type"] != "lock":
                continue
            seen.add(lock_id)
            payee = by_name[flow["peer"]].name
            record: dict[str, Any] | None = kept[payee].get(lock_id)
            assert flow["state"] in ("settled", "released"), flow
            if flow["state"] == "settled":
                assert record is not None and record["state"] == "claimed", (lock_id, record)
                assert claims[payee].get(lock_id) == 1, (lock_id, claims[payee].get(lock_id))
                outcome["claimed"] += 1
            else:
                assert record is None or record["state"] == "expired", (lock_id, record)
                assert lock_id not in claims[payee], lock_id
                assert lock_id not in told.claimed, f"{lock_id}: claimed, then refunded"
                outcome["refunded"] += 1
    assert set(told.locks) <= seen, set(told.locks) - seen
    return outcome
