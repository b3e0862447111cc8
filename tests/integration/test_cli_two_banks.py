"""The customer's commands across two banks, as a new user meets them: looking up a customer
of another bank, reading a history of payments and exchanges, following a flow by the short
id the CLI printed."""

from __future__ import annotations

import json

import pytest

from tests.realwallets import B1, B2, customer, ok, run, two_banks


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
