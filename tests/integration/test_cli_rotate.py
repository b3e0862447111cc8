"""``tchain wallet rotate`` against a real bank: the wallet takes the new key only once the
bank's rotate_key entry verifies, never loses either key on the way, and a crash at either
dangerous moment leaves a wallet that works."""

from __future__ import annotations

import itertools
import json

import pytest

from tests.helpers import BANK, USD
from tests.realwallets import customer, ok, run


class Crash(BaseException):
    """The process dies here (not an error anything would catch)."""


def crash(*_args, **_kwargs):
    raise Crash


NAMES = itertools.count()


@pytest.fixture(scope="module")
def bob(bank, tmp_path_factory):
    return customer(tmp_path_factory.mktemp("rotate"), "bob", bank)


@pytest.fixture
def alice(bank, bob, tmp_path):
    return customer(tmp_path, f"alice{next(NAMES)}", bank, "1000")


def wallet_file(path):
    return json.loads(path.read_text())


def owner_at_the_bank(path) -> str:
    address = wallet_file(path)["address"]
    return json.loads(ok("lookup", address, "--json", wallet=path).stdout)["account_id"]


def test_rotate_keeps_the_new_key_once_the_bank_signed_it(alice):
    old = wallet_file(alice)["public_key"]
    done = json.loads(ok("wallet", "rotate", "--json", wallet=alice).stdout)
    new = done["public_key"]
    assert new != old and wallet_file(alice)["public_key"] == new
    assert wallet_file(alice).get("pending") is None
    assert owner_at_the_bank(alice) == new
    ok("pay", f"bob*{BANK}", "5", USD, wallet=alice)  # signed, and read, by the new key
    kinds = [e["kind"] for e in json.loads(ok("history", "--json", wallet=alice).stdout)
             ["entries"]]
    assert "rotate_key" in kinds
    ok("verify", wallet=alice)


@pytest.mark.parametrize("dies_in", ["cli.rotation.catch_up", "cli.wallet.Wallet.promote"])
def test_a_crash_after_the_bank_signed_leaves_a_wallet_that_works(alice, monkeypatch, dies_in):
    """The bank signed the rotation, the wallet died before it kept the new key (before or
    after it kept the bank's entry): the next command finds the chain owned by the key it
    kept aside (the bank refuses the old one, or the copy says so), and takes it."""
    old = wallet_file(alice)["public_key"]
    with monkeypatch.context() as m:
        m.setattr(dies_in, crash)
        with pytest.raises(Crash):
            run("wallet", "rotate", wallet=alice)
    kept = wallet_file(alice)
    assert kept["public_key"] == old and kept["pending"]["public_key"] != old
    new = kept["pending"]["public_key"]
    assert owner_at_the_bank(alice) == new
    balance = ok("balance", wallet=alice)
    assert "finished" in balance.stderr
    assert wallet_file(alice)["public_key"] == new and wallet_file(alice).get("pending") is None
    ok("pay", f"bob*{BANK}", "5", USD, wallet=alice)


def test_a_crash_before_the_bank_heard_leaves_the_old_key_working(alice, monkeypatch):
    """The wallet kept the new key aside and died before sending the rotation: the old key
    still works, and rotating again sends the rotation it had signed."""
    old = wallet_file(alice)["public_key"]
    with monkeypatch.context() as m:
        m.setattr("cli.client.BankClient.submit", crash)
        with pytest.raises(Crash):
            run("wallet", "rotate", wallet=alice)
    pending = wallet_file(alice)["pending"]["public_key"]
    ok("balance", wallet=alice)
    assert owner_at_the_bank(alice) == old and wallet_file(alice)["public_key"] == old
    done = json.loads(ok("wallet", "rotate", "--json", wallet=alice).stdout)
    assert done["public_key"] == pending == owner_at_the_bank(alice)
    ok("pay", f"bob*{BANK}", "5", USD, wallet=alice)


def test_a_refused_rotation_keeps_the_old_key(alice, monkeypatch):
    old = wallet_file(alice)["public_key"]
    with monkeypatch.context() as m:
        m.setattr("cli.rotation.now_ms", lambda: 1_000_000_000_000)  # a stale intent
        refused = run("wallet", "rotate", wallet=alice)
    assert refused.exit_code == 1 and "stale_time" in refused.stderr
    assert wallet_file(alice)["public_key"] == old and wallet_file(alice).get("pending") is None
    ok("pay", f"bob*{BANK}", "5", USD, wallet=alice)
