"""The outbox sender (and the fetch of a peer's document) against a peer that answers at the
HTTP layer as a hostile bank would: trickled a byte at a time (each within the read timeout)
or without end. Every delivery ends within the sender's bound on the whole exchange, counts a
failure that says why, and changes no money; so a peer cannot hold the one process that
delivers to every peer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from federation.asking import MAX_ANSWER_BYTES
from tests.hostile_server import HostileServer
from tests.interbank_net import NetBank, pin, two_banks
from validator import sender as sender_module
from validator.peers import PeerError, fetch_well_known
from validator.sender import Sender

B2 = "bank2.example"


def _payments_to_a_hostile_bank2(tmp_path: Path, url: str, n: int) -> tuple[NetBank, list[str]]:
    _, b1, b2, _ = two_banks(tmp_path)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 100 * n)
    for _ in range(n):
        b1.submit(alice, "payment", {"to": bob.chain, "to_validator": B2,
                                     "asset": "bank1.example:USD", "amount": "100"})
    with b1.ledger.store.read() as r:
        record = {**r.peer(B2), "url": url}
        ids = [mid for mid, _ in r.records("outbox")]
    b1.ledger.store.write(lambda w: w.put_peer(record))
    assert len(ids) == n
    return b1, ids


@pytest.mark.parametrize(("mode", "said"), [
    ("trickled body", "no whole answer within 1 s"),
    ("endless body", "longer than the"),
])
@pytest.mark.parametrize("n", [1, 2], ids=["alone", "in a batch"])
def test_a_hostile_answer_ends_within_the_bound_and_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, said: str, n: int) -> None:
    monkeypatch.setattr(sender_module, "ANSWER_SECONDS", 1.0)
    with HostileServer(mode) as bank2:
        b1, ids = _payments_to_a_hostile_bank2(tmp_path, bank2.url, n)
        sender = Sender(b1.interbank)
        began = time.monotonic()
        sender.deliver_all(ids)
        took = time.monotonic() - began
        sender.http.close()
    assert took < 4.5, took  # a trickle of 5.5 s, or no end at all
    with b1.ledger.store.read() as r:
        items = [r.record("outbox", mid) for mid in ids]
    assert all(i is not None and i["attempts"] == 1 and said in i["last_error"]
               for i in items), items
    with b1.ledger.store.read() as r:
        assert len(r.open_holds()) == n  # alice's holds stand: nothing was decided


def test_a_bank_whose_document_has_no_end_is_not_pinned():
    """``validator peer add`` fetches the peer's signed well-known document through the same
    bounds: one without end is refused in one sentence, and nothing is pinned."""
    with HostileServer("endless body") as bank, pytest.raises(PeerError) as refused:
        fetch_well_known(bank.url)
    assert refused.value.message == (f"cannot reach {bank.url}: the answer is longer than the "
                                     f"{MAX_ANSWER_BYTES} bytes read")


def _at_once_from_threads(sender: Sender, ids: list[str]) -> dict[str, float]:
    """Each message tried at once by a thread of its own, as concurrent customers' payments
    are by a worker; how long each try took."""
    took: dict[str, float] = {}

    def customer(mid: str) -> None:
        began = time.monotonic()
        sender.try_at_once([mid])
        took[mid] = time.monotonic() - began

    threads = [threading.Thread(target=customer, args=(mid,)) for mid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return took


def test_a_fast_peer_gets_every_message_at_once(tmp_path: Path) -> None:
    """The cap costs a peer that answers in milliseconds nothing: the threads take turns."""
    with HostileServer("honest") as bank2:
        b1, ids = _payments_to_a_hostile_bank2(tmp_path, bank2.url, 6)
        sender = Sender(b1.interbank)
        _at_once_from_threads(sender, ids)
        sender.http.close()
    with b1.ledger.store.read() as r:
        assert [r.record("outbox", mid)["attempts"] for mid in ids] == [1] * 6  # all tried


def test_a_slow_peer_takes_few_of_the_workers_threads(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack 23, F1: 24 customers' payments to a peer that trickles its answers each kept a
    worker thread for the whole bound, and once the threads were all taken, the bank answered
    nobody (its /health took 9 s). A worker now tries at once at most AT_ONCE_PER_PEER
    messages to one peer at a time; another waits AT_ONCE_WAIT for a turn, then is left to
    the sender."""
    monkeypatch.setattr(sender_module, "ANSWER_SECONDS", 3.0)
    with HostileServer("trickled body") as bank2:
        b1, ids = _payments_to_a_hostile_bank2(tmp_path, bank2.url, 6)
        sender = Sender(b1.interbank)
        took = _at_once_from_threads(sender, ids)
        sender.http.close()
    waited = sorted(took.values())
    limit = sender_module.AT_ONCE_PER_PEER
    wait = sender_module.AT_ONCE_WAIT
    assert all(wait - 0.1 < t < wait + 1.5 for t in waited[:len(ids) - limit]), waited  # left
    assert all(2.9 < t < 6 for t in waited[len(ids) - limit:]), waited  # tried, and cut
    with b1.ledger.store.read() as r:
        attempts = sorted(r.record("outbox", mid)["attempts"] for mid in ids)
    assert attempts == [0] * (len(ids) - limit) + [1] * limit


def test_a_slow_peer_does_not_hold_the_sender_s_deliveries_to_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack 23, F2: while the sender waited out one slow peer's exchange (its bound), its
    deliveries to every other peer waited too (a route 1->2->3 took 18 s instead of 0.7). The
    sender now delivers to each peer on its own, one exchange in flight per peer."""
    monkeypatch.setattr(sender_module, "ANSWER_SECONDS", 3.0)
    clock, b1, b2, _ = two_banks(tmp_path)
    b3 = NetBank(tmp_path / "b3", "bank3.example", clock)
    pin(b1, b3)
    alice, bob, carol = b1.join("alice"), b2.join("bob"), b3.join("carol")
    b1.deposit(alice, 500)
    for to, bank in ((bob, B2), (carol, "bank3.example")):
        b1.submit(alice, "payment", {"to": to.chain, "to_validator": bank,
                                     "asset": "bank1.example:USD", "amount": "100"})
    with HostileServer("trickled body") as slow, HostileServer("honest") as fast:
        with b1.ledger.store.read() as r:
            by_peer = {item["peer"]: mid for mid, item in r.records("outbox")}
            records = [{**r.peer(B2), "url": slow.url},
                       {**r.peer("bank3.example"), "url": fast.url}]
        b1.ledger.store.write(lambda w: [w.put_peer(x) for x in records])
        clock.now += 60_000  # both due for the sender
        sender = Sender(b1.interbank)
        began = time.monotonic()
        sender.run_once()

        def attempts(peer: str) -> int:
            with b1.ledger.store.read() as r:
                return int(r.record("outbox", by_peer[peer])["attempts"])

        while attempts("bank3.example") == 0 and time.monotonic() - began < 10:
            time.sleep(0.01)
        fast_done = time.monotonic() - began
        sender.run_once()  # a round while the slow exchange is in flight: not asked again
        sender.close()
        slow_done = time.monotonic() - began
        sender.http.close()
    assert fast_done < 2.0, fast_done  # not behind the slow peer's 3 s
    assert 2.5 < slow_done < 8, slow_done
    assert attempts(B2) == 1 and attempts("bank3.example") >= 1
