"""The wallet's client against a bank that answers as a hostile one would at the HTTP layer:
trickled a byte at a time (each within the read timeout) or without end. The wallet stops at
its bound on the whole exchange, or at its limit on the answer's size, and says so in one
sentence (attack 22: a wallet read a 30 MB answer from a lying bank)."""

from __future__ import annotations

import time

import pytest

from cli import client as client_module
from cli.client import BankClient
from cli.errors import BankError, UnreachableError
from tests.hostile_server import HostileServer


def test_a_trickled_answer_stops_the_wallet_at_its_bound(monkeypatch):
    monkeypatch.setattr(client_module, "ANSWER_SECONDS", 1.0)
    with HostileServer("trickled body") as bank:
        began = time.monotonic()
        with pytest.raises(UnreachableError) as read:
            BankClient(bank.url).well_known()
        with pytest.raises(UnreachableError) as posted:
            BankClient(bank.url).submit({"type": "payment"})
        took = time.monotonic() - began
    assert took < 8.0, took  # two trickles of 5.5 s each
    assert read.value.message.endswith("no whole answer within 1 s")
    assert "what was sent may have been done" in posted.value.message


def test_an_answer_without_end_is_refused_at_the_limit():
    with HostileServer("endless body") as bank, pytest.raises(BankError) as refused:
        BankClient(bank.url).well_known()
    assert "the answer is longer than the 67108864 bytes read" in refused.value.message
    assert "\n" not in refused.value.message
