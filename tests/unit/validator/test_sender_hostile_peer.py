"""The outbox sender (and the fetch of a peer's document) against a peer that answers at the
HTTP layer as a hostile bank would: trickled a byte at a time (each within the read timeout)
or without end. Every delivery ends within the sender's bound on the whole exchange, counts a
failure that says why, and changes no money; so a peer cannot hold the one process that
delivers to every peer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from federation.asking import MAX_ANSWER_BYTES
from tests.hostile_server import HostileServer
from tests.interbank_net import NetBank, two_banks
from validator import sender as sender_module
from validator.peers import PeerError, fetch_well_known
from validator.sender import Sender

B2 = "bank2.example"


def _payments_to_a_hostile_bank2(tmp_path: Path, url: str, n: int) -> tuple[NetBank, list[str]]:
    _, b1, b2, _ = two_banks(tmp_path)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 500)
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
    assert took < 3.0, took  # a trickle of 5.5 s, or no end at all
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
