"""The customer's commands across two banks, as a new user meets them: looking up a customer
of another bank, reading a history of payments and exchanges, following a flow by the short
id the CLI printed."""

from __future__ import annotations

import json
import re

import pytest

from tests.realbanks import eventually
from tests.realwallets import B1, B2, EUR, USD, customer, ok, run, two_banks


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("two-banks")
    with two_banks(base) as (b1, b2):
        yield {"b1": b1, "b2": b2, "base": base,
               "alice": customer(base, "alice", b1, "1000"),
               "carol": customer(base, "carol", b2, "1000")}


def test_lookup_finds_the_bank_of_the_address_through_yours(world):
    record = json.loads(ok("lookup", f"carol*{B2}", "--json", wallet=world["alice"]).stdout)
    assert record["address"] == f"carol*{B2}" and record["validator"] == B2
    by_url = json.loads(ok("lookup", f"carol*{B2}", "--validator", world["b1"].url,
                           "--json").stdout)
    assert by_url == record
    mine = json.loads(ok("lookup", f"alice*{B1}", "--json", wallet=world["alice"]).stdout)
    assert mine["validator"] == B1


def test_lookup_of_a_bank_yours_does_not_trust_says_so(world):
    refused = run("lookup", "dave*bank9.example", wallet=world["alice"])
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert "bank9.example" in line and f"not a bank {B1} trusts" in line


def test_lookup_of_an_unknown_customer_names_the_bank_asked(world):
    refused = run("lookup", f"nobody*{B2}", wallet=world["alice"])
    assert refused.exit_code == 1 and f"nobody*{B2} is not known at {B2}" in refused.stderr


def short_id(printed: str) -> str:
    """The id a command printed in brackets: what a person copies."""
    return re.search(r"\(([0-9a-f]{16})\)", printed).group(1)


def test_flow_takes_the_short_id_pay_printed(world):
    paid = ok("pay", f"carol*{B2}", "10", USD, wallet=world["alice"]).stdout
    entry = short_id(paid)
    assert f"tchain flow {entry}" not in paid or "pending" in paid
    for typed in (entry, entry[:8], entry.upper()):
        shown = ok("flow", typed, wallet=world["alice"]).stdout
        assert shown.startswith(f"transfer with {B2}: settled")


def test_flow_of_an_exchange_from_either_side(world):
    alice, carol = world["alice"], world["carol"]
    made = json.loads(ok("offer", "create", "--sell", "30", EUR, "--buy", "20", USD, "--json",
                         wallet=carol).stdout)["entry"]
    listed = eventually(lambda: [row for row in ok("offer", "list", wallet=alice).stdout
                                 .splitlines() if row.startswith(made[:16])])
    taken = ok("offer", "take", listed[0].split()[0], wallet=alice).stdout
    assert "settled" in taken
    assert ok("flow", short_id(taken), wallet=alice).stdout.startswith(f"take with {B2}: settled")
    settle = eventually(lambda: [e for e in json.loads(ok("history", "--json", wallet=carol)
                                                       .stdout)["entries"]
                                 if e["kind"] == "settle"])[-1]
    assert ok("flow", settle["id"][:10], wallet=carol).stdout.startswith(f"exchange with {B1}")


def test_flow_errors_speak_of_what_was_typed(world):
    alice = world["alice"]
    bad = run("flow", "zz", wallet=alice)
    assert bad.exit_code == 2 and "'zz' is not an entry id" in bad.stderr
    deposit = json.loads(ok("history", "--json", wallet=alice).stdout)["entries"][1]
    not_flow = run("flow", deposit["id"][:12], wallet=alice)
    assert not_flow.exit_code == 1
    [line] = not_flow.stderr.splitlines()
    assert "no cross-bank flow" in line and "entry 1 of your chain (credit)" in line
    ids = {e["id"] for e in json.loads(ok("history", "--json", wallet=alice).stdout)["entries"]}
    unknown = next(p for p in (f"{n:04x}" for n in range(65536))
                   if not any(i.startswith(p) for i in ids))
    none = run("flow", unknown, wallet=alice)
    assert none.exit_code == 1 and f"no entry of your chain starts with {unknown}" in none.stderr


def test_offer_cancel_takes_a_short_id(world):
    carol = world["carol"]
    made = json.loads(ok("offer", "create", "--sell", "5", EUR, "--buy", "5", USD, "--json",
                         wallet=carol).stdout)["entry"]
    ok("offer", "cancel", made[:12], wallet=carol)
    held = json.loads(ok("balance", "--json", wallet=carol).stdout)["balances"][EUR]["held"]
    assert held == "0"


def rows_of(history: str, height: int) -> list[str]:
    return [row for row in history.splitlines()[2:] if row.split()[0] == str(height)]


def test_history_shows_every_effect_and_names_counterparties_by_address(world):
    alice, carol = world["alice"], world["carol"]
    ok("pay", f"carol*{B2}", "7", USD, "--memo", "lunch", wallet=alice)
    made = json.loads(ok("offer", "create", "--sell", "11", EUR, "--buy", "13", USD, "--json",
                         wallet=carol).stdout)["entry"]
    eventually(lambda: made[:16] in ok("offer", "list", wallet=alice).stdout)
    ok("offer", "take", made[:16], wallet=alice)
    entries = json.loads(ok("history", "--json", wallet=alice).stdout)["entries"]
    settle = entries[-1]
    assert settle["kind"] == "settle" and settle["counterparty"] == f"carol*{B2}"
    history = ok("history", "--limit", "50", wallet=alice).stdout
    legs = rows_of(history, settle["height"])
    assert len(legs) == 2  # what the exchange gave and what it got, each on a row
    assert any(EUR in row and "+11" in row for row in legs)
    assert any(USD in row and "-13" in row for row in legs)
    assert all(f"carol*{B2}" in row for row in legs)
    deposit = rows_of(history, 1)
    assert f"from {B1}" in deposit[0]
    [lunch] = [row for row in history.splitlines() if "lunch" in row]
    assert f"to carol*{B2}" in lunch
    carol_chain = json.loads(carol.read_text())["chain"]
    assert carol_chain[:12] not in history
    theirs = ok("history", "--limit", "50", wallet=carol).stdout
    assert f"from alice*{B1}" in theirs and f"with alice*{B1}" in theirs


def test_history_names_counterparties_from_the_wallet_when_their_bank_is_down(world):
    alice = world["alice"]
    ok("pay", f"carol*{B2}", "3", USD, wallet=alice)
    ok("history", wallet=alice)
    world["b2"].stop()
    try:
        history = ok("history", wallet=alice).stdout
    finally:
        world["b2"].start()
    assert f"to carol*{B2}" in history
