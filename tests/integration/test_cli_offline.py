"""Reads come from the wallet's own verified copy: with the bank down they still answer, and
say as of which height; a payment whose payee's bank is down says that bank is down."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from tests.realwallets import B1, B2, EUR, USD, customer, ok, run, two_banks


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("offline")
    with two_banks(base) as (b1, b2):
        alice = customer(base, "alice", b1, "1000")
        carol = customer(base, "carol", b2, "1000")
        ok("pay", f"carol*{B2}", "100", USD, wallet=alice)
        offer = json.loads(ok("offer", "create", "--sell", "50", USD, "--buy", "40", EUR,
                              "--json", wallet=alice).stdout)["entry"]
        yield {"b1": b1, "b2": b2, "alice": alice, "carol": carol, "offer": offer}


@contextmanager
def down(bank):
    bank.stop()
    try:
        yield
    finally:
        bank.start()


def test_balance_history_and_verify_answer_from_the_copy_when_the_bank_is_down(world):
    alice = world["alice"]
    height = json.loads(ok("sync", "--json", wallet=alice).stdout)["height"]
    with down(world["b1"]):
        balance = ok("balance", wallet=alice)
        assert f"as of height {height}; bank unreachable" in balance.stdout
        assert f"your bank {B1}" in balance.stderr
        as_json = json.loads(ok("balance", "--json", wallet=alice).stdout)
        assert as_json["offline"] is True and as_json["height"] == height
        assert as_json["balances"][USD] == {"balance": "900", "held": "50"}
        history = ok("history", wallet=alice)
        assert f"as of height {height}; bank unreachable" in history.stdout
        assert "offer" in history.stdout
        verified = ok("verify", wallet=alice)
        assert f"{height + 1} entries verified" in verified.stdout
        assert "not compared with your bank" in verified.stdout
        assert json.loads(ok("verify", "--json", wallet=alice).stdout)["compared"] is False
        offers = ok("offer", "list", wallet=alice)
        assert world["offer"][:16] in offers.stdout and "bank unreachable" in offers.stdout
        listed = json.loads(ok("offer", "list", "--json", wallet=alice).stdout)
        assert [o["id"] for o in listed["offers"]] == [world["offer"]] and listed["offline"]


def test_sync_needs_the_bank_and_says_which(world):
    with down(world["b1"]):
        refused = run("sync", wallet=world["alice"])
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert f"cannot reach your bank {B1}" in line


def test_a_payment_to_a_bank_that_is_down_names_that_bank(world):
    alice = world["alice"]
    with down(world["b2"]):
        refused = run("pay", f"carol*{B2}", "10", USD, wallet=alice)
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert f"cannot reach {B2}, the bank of carol*{B2}" in line
    assert "your bank" not in line and "nothing was paid" in line
