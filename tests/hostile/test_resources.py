"""A refused request costs nothing that lasts: 10,000 refused requests of every kind (hash-time
lock claims and plan proposals among them) against a real bank, then what its processes hold is
counted (LMDB reader slots, threads, descriptors, memory) and what its store keeps (answers,
outbox rows, proofs, locks, plans), against a baseline taken after the same traffic warmed it
up."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cli.local import LocalBank
from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.messages import sign_message
from tests.campaign import report, scale
from tests.hostile.conftest import B1
from tests.hostile.harness import HostilePeer, books_balance
from tests.realbanks import read, register, submit
from validator.operator import deposit
from validator.store import MAX_READERS, Store

REQUESTS = scale(10_000, 100_000)
CLIENTS = 8
USD = f"{B1}:USD"


def _processes(bank: LocalBank) -> list[int]:
    """Every process of the running bank: its session (LocalBank starts one per bank)."""
    assert bank.process is not None
    session = bank.process.pid
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == session:  # the session id
            found.append(int(entry))
    return found


def _held(bank: LocalBank) -> dict[str, int]:
    """What the bank's processes hold now, summed over them, and its reader slots."""
    held: Counter[str] = Counter()
    for pid in _processes(bank):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            held["fds"] += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue  # it ended meanwhile
        for line in status.splitlines():
            name, _, value = line.partition(":")
            if name == "Threads":
                held["threads"] += int(value)
            elif name == "VmRSS":
                held["rss_kib"] += int(value.split()[0])
            elif name in ("RssAnon", "RssFile"):  # what a leak grows / LMDB's mapped pages
                held[f"rss_{name[3:].lower()}_kib"] += int(value.split()[0])
        held["processes"] += 1
    store = Store(bank.config.ledger_path)
    try:
        held["reader_slots"] = store.reader_slots()
    finally:
        store.close()
    return dict(held)


def _rows(bank: LocalBank) -> dict[str, int]:
    return read(bank, lambda r: {db: r.count(db) for db in
                                 ("inbox", "outbox", "proofs", "subjects", "flows", "offers",
                                  "states", "entries", "locks", "plans")})


class Hostile:
    """Refused requests of every kind, each a function of the request's number."""

    def __init__(self, bank: LocalBank, peer: HostilePeer, customer: Any) -> None:
        self.bank, self.peer, self.customer = bank, peer, customer
        self.stranger = SigningKey.generate()
        stale = sign_intent(customer.key, "payment", customer.chain, 1, now_ms(), {
            "to": customer.chain, "asset": USD, "amount": "1"})
        self.stale = canonical(stale)
        self.stale_batch = canonical({"intents": [stale] * 100})
        forged = dict(stale, sig="00" * 64)
        self.forged = canonical(forged)
        self.taken = canonical(register_request(customer.key, customer.name, now_ms(),
                                                bank=bank.name, kyc_record=None))
        self.huge = b'{"intents": [' + b" " * (1 << 20) + b"]}"
        junk = peer.entry(chain=SigningKey.generate().public_key, kind="settle", intent=None,
                          effects=[{"asset": USD, "balance": "-1", "held": "-1"}])
        self.unpinned = canonical(sign_message(self.stranger, "settle", "stranger.example", B1,
                                               now_ms(), settlement=junk.doc))
        self.kinds: list[Callable[[requests.Session, int], requests.Response]] = [
            self.malformed, self.bad_signature, self.stale_seq, self.stale_seq_batch,
            self.unknown_chain, self.unauthenticated_read, self.bad_read_signature,
            self.read_of_another_chain, self.name_taken, self.too_large,
            self.unpinned_peer, self.malformed_peer_message, self.peer_lie,
            self.unknown_route, self.wrong_method, self.claim_of_no_lock,
            self.malformed_plan]

    def url(self, path: str) -> str:
        return self.bank.url + path

    def malformed(self, s: requests.Session, i: int) -> requests.Response:
        return s.post(self.url("/v1/intents"), data=b'{"intent": [' + str(i).encode())

    def bad_signature(self, s: requests.Session, i: int) -> requests.Response:
        return s.post(self.url("/v1/intents"), data=self.forged)

    def stale_seq(self, s: requests.Session, i: int) -> requests.Response:
        return s.post(self.url("/v1/intents"), data=self.stale)

    def stale_seq_batch(self, s: requests.Session, i: int) -> requests.Response:
        return s.post(self.url("/v1/intents/batch"), data=self.stale_batch)

    def unknown_chain(self, s: requests.Session, i: int) -> requests.Response:
        intent = sign_intent(self.stranger, "payment", f"{i:064x}", 1, now_ms(), {
            "to": f"{i:064x}", "asset": USD, "amount": "1"})
        return s.post(self.url("/v1/intents"), data=canonical(intent))

    def unauthenticated_read(self, s: requests.Session, i: int) -> requests.Response:
        return s.get(self.url(f"/v1/chains/{self.customer.chain}"))

    def bad_read_signature(self, s: requests.Session, i: int) -> requests.Response:
        path = f"/v1/chains/{self.customer.chain}"
        header = authorization_header(self.customer.key, "GET", path, "x=1", b"", now_ms(),
                                      bank=B1)
        return s.get(self.url(path), headers={"Authorization": header})

    def read_of_another_chain(self, s: requests.Session, i: int) -> requests.Response:
        path = f"/v1/chains/{self.customer.chain}/entries"
        header = authorization_header(self.stranger, "GET", path, "", b"", now_ms(), bank=B1)
        return s.get(self.url(path), headers={"Authorization": header})

    def name_taken(self, s: requests.Session, i: int) -> requests.Response:
        return s.post(self.url("/v1/chains"), data=self.taken)

    def too_large(self, s: requests.Session, i: int) -> requests.Response:
        # on a connection of its own: the server refuses the body unread and may close it
        return requests.post(self.url("/v1/intents/batch"), data=self.huge,
                             headers={"Connection": "close"}, timeout=30)

    def unpinned_peer(self, s: requests.Session, i: int) -> requests.Response:
        path = "/v1/peer/messages"
        return s.post(self.url(path), data=self.unpinned, headers={
            "Authorization": authorization_header(self.stranger, "POST", path, "",
                                                  self.unpinned, now_ms(), bank=B1)})

    def malformed_peer_message(self, s: requests.Session, i: int) -> requests.Response:
        body = canonical({"message": {"type": "transfer", "n": i}, "sig": "00"})
        path = "/v1/peer/messages"
        return s.post(self.url(path), data=body, headers={"Authorization": authorization_header(
            self.peer.key, "POST", path, "", body, now_ms(), bank=B1)})

    def peer_lie(self, s: requests.Session, i: int) -> requests.Response:
        hold, payer = self.peer.forged_hold(self.customer.chain, USD, 10**9 + i)
        body = canonical(self.peer.transfer(hold, payer))
        path = "/v1/peer/messages"
        return s.post(self.url(path), data=body, headers={"Authorization": authorization_header(
            self.peer.key, "POST", path, "", body, now_ms(), bank=B1)})

    def claim_of_no_lock(self, s: requests.Session, i: int) -> requests.Response:
        claim = sign_intent(self.customer.key, "claim", self.customer.chain, 1, now_ms(), {
            "lock": f"{i:064x}", "preimage": "00" * 32})
        return s.post(self.url("/v1/intents"), data=canonical(claim))

    def malformed_plan(self, s: requests.Session, i: int) -> requests.Response:
        body = canonical({"participants": [], "instructions": i})
        return s.post(self.url("/v1/plans"), data=body, headers={
            "Authorization": authorization_header(self.customer.key, "POST", "/v1/plans", "",
                                                  body, now_ms(), bank=B1)})

    def unknown_route(self, s: requests.Session, i: int) -> requests.Response:
        return s.get(self.url(f"/v1/nothing/{i}"))

    def wrong_method(self, s: requests.Session, i: int) -> requests.Response:
        return s.delete(self.url("/v1/intents"))

    def run(self, count: int, clients: int = CLIENTS) -> Counter[tuple[str, int]]:
        """``count`` refused requests, the kinds in turn, from ``clients`` keep-alive
        clients; how many of each kind got each status."""
        statuses: Counter[tuple[str, int]] = Counter()
        lock = threading.Lock()

        def client(start: int) -> None:
            with requests.Session() as s:
                for i in range(start, count, clients):
                    kind = self.kinds[i % len(self.kinds)]
                    try:
                        status = kind(s, i).status_code
                    except requests.ConnectionError:
                        # a server may close the connection on a body it refuses unread
                        assert kind == self.too_large
                        status = 0
                    with lock:
                        statuses[kind.__name__, status] += 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return statuses


@pytest.fixture(scope="module")
def target(pair: tuple[LocalBank, LocalBank]) -> Iterator[Hostile]:
    b1, b2 = pair
    customer = register(b1, "resourceful")
    yield Hostile(b1, HostilePeer(b2, b1), customer)


def test_ten_thousand_refused_requests_leave_nothing_behind(target):
    bank = target.bank
    # warm up, from more clients than will come after: every pool at its most threads, every
    # cache full; what is counted next must not grow from there
    target.run(len(target.kinds) * 60, clients=4 * CLIENTS)
    before, rows_before = _held(bank), _rows(bank)
    statuses = target.run(REQUESTS)
    after, rows_after = _held(bank), _rows(bank)
    assert sum(statuses.values()) == REQUESTS
    # a peer's lie is answered 200 with its signed refusal, a batch 200 with each intent's
    # refusal; every other request is refused with a 4xx (or, past the size limit, a close)
    accepted = {k: n for k, n in statuses.items()
                if not 400 <= k[1] < 500 and k[0] not in ("peer_lie", "stale_seq_batch")}
    assert accepted == {k: n for k, n in statuses.items() if k == ("too_large", 0)}, statuses
    # what the processes hold is what they held before
    assert after["processes"] == before["processes"], (before, after)
    assert after["threads"] <= before["threads"] + 2, (before, after)
    assert after["fds"] <= before["fds"] + 2 * CLIENTS, (before, after)
    assert after["rss_kib"] <= before["rss_kib"] + 64 * 1024, (before, after)
    assert after["reader_slots"] <= after["processes"] + 1 < MAX_READERS, (before, after)
    # and the store keeps nothing for the refused customers; for the lying peer, its signed
    # refusals and what they answered (let go after their deadline, tests/unit's
    # test_refusals_are_forgotten...) and at most 100 proofs against it
    lies = REQUESTS // len(target.kinds) + 1
    grown = {db: rows_after[db] - rows_before[db] for db in rows_after}
    assert grown["inbox"] <= lies and grown["subjects"] <= lies, grown
    assert rows_after["proofs"] <= 100, rows_after
    assert {db: n for db, n in grown.items() if db not in ("inbox", "subjects", "proofs")} == \
        dict.fromkeys(("outbox", "flows", "offers", "states", "entries", "locks", "plans"), 0), \
        grown
    books_balance(bank)
    report("refused requests", requests=REQUESTS, kinds=len(target.kinds),
           statuses=dict(sorted(Counter(s for _, s in statuses.elements()).items())),
           before=before, after=after, rows_grown=grown)
    # and the bank still serves: a real payment goes through
    alice, bob = register(bank, "after-alice"), register(bank, "after-bob")
    deposit(bank.config, "after-alice", "100", "USD")
    r = submit(bank, alice, "payment", {"to": bob.chain, "asset": USD, "amount": "40"})
    assert r.status_code == 201, r.text
