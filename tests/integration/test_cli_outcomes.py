"""A command whose intent the bank signed but whose flow across banks was refused did not do
what was asked: exit 1 and one sentence, never exit 0 (also under ``--json``)."""

from __future__ import annotations

import json

import pytest

from tests.fault_proxy import FaultProxy
from tests.realwallets import B2, EUR, USD, customer, ok, run, two_banks


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    """bank1 and bank2; bank2 reaches bank1 only through a proxy that the tests may cut, so
    bank1 can go on listing an offer that bank2 has closed."""
    base = tmp_path_factory.mktemp("outcomes")
    proxy = FaultProxy()
    with two_banks(base, proxy) as (b1, b2):
        yield b1, b2, proxy, base


def test_a_take_the_makers_bank_refuses_exits_1(banks):
    b1, b2, proxy, base = banks
    alice, carol = customer(base, "alice", b1, "1000"), customer(base, "carol", b2, "1000")
    offers = []
    for _ in range(2):
        made = json.loads(ok("offer", "create", "--sell", "50", EUR, "--buy", "60", USD,
                             "--json", wallet=carol).stdout)
        offers.append(made["entry"])
    listed = {o["id"] for o in json.loads(ok("offer", "list", "--json", wallet=alice).stdout)
              ["offers"]}
    if not set(offers) <= listed:  # bank2 tells its peers at once; wait for the outbox if not
        from tests.realbanks import eventually
        eventually(lambda: set(offers) <= {o["id"] for o in json.loads(
            ok("offer", "list", "--json", wallet=alice).stdout)["offers"]})
    proxy.set(drop=1.0)  # bank1 hears nothing more from bank2
    try:
        for offer in offers:
            ok("offer", "cancel", offer, wallet=carol)
        refused = run("offer", "take", offers[0], wallet=alice)
        assert refused.exit_code == 1, repr(refused.stdout + refused.stderr)
        assert refused.stdout == ""
        [line] = refused.stderr.splitlines()
        assert line.startswith(f"error: offer {offers[0]} was not taken: ")
        assert "no longer open" in line and "released" in line
        as_json = run("offer", "take", offers[1], "--json", wallet=alice)
        assert as_json.exit_code == 1 and as_json.stdout == ""
        error = json.loads(as_json.stderr)
        assert error["error"] == "released" and error["flow"]["state"] == "released"
    finally:
        proxy.heal()
    balances = json.loads(ok("balance", "--json", wallet=alice).stdout)["balances"]
    assert balances[USD] == {"balance": "1000", "held": "0"}


def test_a_payment_the_payees_bank_refuses_exits_1(banks):
    b1, b2, _, base = banks
    dave = customer(base, "dave", b1, "1000", "--kyc-recipients")
    customer(base, "erin", b2, None, "--no-kyc")
    refused = run("pay", f"erin*{B2}", "100", USD, wallet=dave)
    assert refused.exit_code == 1 and refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: 100 {USD} was not paid to erin*{B2}: ") and "released" in line
    balances = json.loads(ok("balance", "--json", wallet=dave).stdout)["balances"]
    assert balances[USD] == {"balance": "1000", "held": "0"}
