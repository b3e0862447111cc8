"""What every multi-bank fault campaign needs once the faults stop: random peer faults for a
round, a wait until the banks are quiet, and the invariants that must then hold (no hold open,
no proof between honest banks, every chain sound, every audit clean, every asset summing to
zero). One copy here, so the peer, lock, plan and crash campaigns check the same things."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from cli.local import LocalBank
from tchain.model import SignedEntry
from tests.fault_proxy import FaultProxy
from tests.realbanks import assert_every_chain_sound, eventually, read, totals
from validator.operator import run_audit
from validator.peers import add_peer

BUSY = ("pending", "accepted", "awaiting_peer")  # a flow still waiting on something


@contextmanager
def proxied_banks(base: Path, assets: dict[str, str], **options: Any
                  ) -> Iterator[tuple[list[LocalBank], list[FaultProxy]]]:
    """One bank per ``assets`` item (its name: its one asset), each behind a fault proxy of its
    own (its public URL, so a peer reaches it only through the proxy, and one direction can be
    cut alone), every bank pinning every other; stopped after. ``options`` go to each
    :class:`LocalBank`."""
    proxies = [FaultProxy(seed=i + 1) for i in range(len(assets))]
    banks = [LocalBank(base / name.split(".")[0], name, assets=(asset,), public_url=p.url,
                       **options) for (name, asset), p in zip(assets.items(), proxies, strict=True)]
    for bank, proxy in zip(banks, proxies, strict=True):
        proxy.start(bank.port)
    try:
        with ExitStack() as stack:
            for bank in banks:
                stack.enter_context(bank)
            for bank in banks:
                for peer, proxy in zip(banks, proxies, strict=True):
                    if peer is not bank:
                        add_peer(bank.config, proxy.url)
            yield banks, proxies
    finally:
        for proxy in proxies:
            proxy.close()


def records(bank: LocalBank, db: str) -> dict[str, Any]:
    return read(bank, lambda r: dict(r.records(db)))


def entries_by_evidence(bank: LocalBank, kind: str, evidence_kind: str) -> dict[str, int]:
    """How many ``kind`` entries at ``bank`` carry each ``evidence_kind`` entry (by id) as
    their first evidence: a payment credited twice, or a lock claimed twice, shows as 2."""
    def scan(r: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for chain in r.chain_ids(None, 10**6):
            for raw in r.entries(chain, 0, 10**6):
                entry = SignedEntry.from_bytes(raw)
                if entry.kind == kind and entry.evidence:
                    cause = SignedEntry.from_dict(entry.evidence[0])
                    if cause.kind == evidence_kind:
                        out[cause.id] = out.get(cause.id, 0) + 1
        return out
    return dict(read(bank, scan))


def kinds(bank: LocalBank) -> dict[str, int]:
    """How many entries of each kind the bank's chains hold."""
    def scan(r: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for chain in r.chain_ids(None, 10**6):
            for raw in r.entries(chain, 0, 10**6):
                kind = SignedEntry.from_bytes(raw).kind
                out[kind] = out.get(kind, 0) + 1
        return out
    return dict(read(bank, scan))


@contextmanager
def faults(proxies: Sequence[FaultProxy], rng: random.Random, *, cut: bool) -> Iterator[None]:
    """Two random faults on each proxy, 10-30 % each, while the body runs (then healed); with
    ``cut``, one proxy (one direction of the traffic, into one bank) drops everything."""
    for proxy in proxies:
        chosen = rng.sample(("drop", "delay", "lose_reply", "blackhole"), 2)
        proxy.set(**{f: rng.uniform(0.1, 0.3) for f in chosen})
    if cut:
        rng.choice(list(proxies)).set(drop=1.0)
    try:
        yield
    finally:
        for proxy in proxies:
            proxy.heal()


def quiet(*banks: LocalBank) -> bool:
    """No message waiting and no flow still in progress at any bank."""
    for bank in banks:
        if records(bank, "outbox"):
            return False
        if any(f["state"] in BUSY for f in records(bank, "flows").values()):
            return False
    return True


def wait_quiet(*banks: LocalBank, timeout: float = 90) -> None:
    eventually(lambda: quiet(*banks), timeout=timeout)


def no_holds(bank: LocalBank) -> None:
    def check(r: Any) -> None:
        for chain in r.chain_ids(None, 10**6):
            state = r.state_with_holds(chain)
            assert not state.holds, (chain, state.holds)
    read(bank, check)


def assert_sound(*banks: LocalBank) -> int:
    """The invariants every campaign round ends with, between honest banks: no hold open, no
    proof kept, every chain sound, every audit clean, every asset summing to zero over all
    the banks. Returns the number of entries verified."""
    entries = 0
    for bank in banks:
        no_holds(bank)
        assert records(bank, "proofs") == {}, (bank.name, records(bank, "proofs"))
        entries += assert_every_chain_sound(bank)
        audit = run_audit(bank.config)
        assert audit.ok, (bank.name, audit.problems)
    assert all(t == 0 for t in totals(*banks).values()), totals(*banks)
    return entries
