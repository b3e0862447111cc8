"""What a new user types wrong, against a real bank: each mistake gets one plain sentence about
what was typed, exit 2 for bad usage and 1 for a refusal, and JSON under ``--json``."""

from __future__ import annotations

import json

import pytest

from tests.helpers import BANK, USD
from tests.realwallets import customer, ok, run


@pytest.fixture(scope="module")
def alice(bank, tmp_path_factory):
    base = tmp_path_factory.mktemp("usage")
    customer(base, "bob", bank)
    return customer(base, "alice", bank, deposit="1000")


def error_line(result) -> str:
    """The one line a refusal prints (no traceback, nothing else)."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_capitalised_name_is_bad_usage_about_the_name(bank, tmp_path):
    ok("wallet", "create", wallet=tmp_path / "w.json")
    result = run("register", "Frank", "--validator", bank.url, wallet=tmp_path / "w.json")
    assert result.exit_code == 2
    assert "'Frank' cannot be registered" in result.stderr and "'frank'" in result.stderr
    assert "validator name" not in result.stderr


def test_a_url_without_its_scheme_is_bad_usage(tmp_path):
    ok("wallet", "create", wallet=tmp_path / "w.json")
    result = run("register", "frank", "--validator", "127.0.0.1:5327",
                 wallet=tmp_path / "w.json")
    assert result.exit_code == 2
    assert "http://127.0.0.1:5327" in result.stderr and "InvalidSchema" not in result.stderr


def test_lookup_at_a_url_without_its_scheme_is_bad_usage():
    result = run("lookup", f"bob*{BANK}", "--validator", "127.0.0.1:5327")
    assert result.exit_code == 2 and "http://127.0.0.1:5327" in result.stderr


def test_a_bare_name_is_not_taken_for_a_bank(alice):
    result = run("pay", "bob", "10", USD, wallet=alice)
    assert result.exit_code == 2
    assert "bob is not an address" in result.stderr and f"bob*{BANK}" in result.stderr
    assert "peer" not in result.stderr


def test_a_bank_that_is_no_peer_is_named_as_such(alice):
    line = error_line(run("pay", "carol*bank9.example", "10", USD, wallet=alice))
    assert "bank9.example" in line and "carol*bank9.example" in line
    assert "not a bank" in line


@pytest.mark.parametrize("amount", ["1.5", "abc", "0", "01", "1e3", "10 "])
def test_a_bad_amount_is_bad_usage_in_plain_words(alice, amount):
    result = run("pay", f"bob*{BANK}", amount, USD, wallet=alice)
    assert result.exit_code == 2
    assert f"{amount!r} is not an amount" in result.stderr
    assert "string of digits" not in result.stderr


def test_a_bad_amount_of_an_offer_is_bad_usage(alice):
    result = run("offer", "create", "--sell", "1.5", USD, "--buy", "1", "bank2.example:EUR",
                 wallet=alice)
    assert result.exit_code == 2 and "'1.5' is not an amount" in result.stderr


def test_a_bad_asset_is_bad_usage(alice):
    result = run("pay", f"bob*{BANK}", "10", "USD", wallet=alice)
    assert result.exit_code == 2 and "'USD' is not an asset" in result.stderr


def test_an_asset_you_never_held_is_named_not_your_chain_id(alice):
    chain = json.loads(alice.read_text())["chain"]
    result = run("pay", f"bob*{BANK}", "10", f"{BANK}:XYZ", wallet=alice)
    line = error_line(result)
    assert result.exit_code == 1 and f"you hold no {BANK}:XYZ" in line and chain not in line


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_history_limit_below_one_is_bad_usage(alice, limit):
    result = run("history", "--limit", limit, wallet=alice)
    assert result.exit_code == 2 and "--limit" in result.stderr


def test_errors_under_json_are_json(alice):
    refused = run("pay", f"bob*{BANK}", "99999999", USD, "--json", wallet=alice)
    assert refused.exit_code == 1 and refused.stdout == ""
    error = json.loads(refused.stderr)
    assert error["error"] == "insufficient_funds" and error["message"]
    usage = run("pay", f"bob*{BANK}", "1.5", USD, "--json", wallet=alice)
    assert usage.exit_code == 2
    assert json.loads(usage.stderr)["error"] == "usage"
    root_flag = run("--json", "history", "--limit", "0", wallet=alice)
    assert root_flag.exit_code == 2 and json.loads(root_flag.stderr)["error"] == "usage"
    root_option = run("--json", "--no-such-option", "balance", wallet=alice)
    assert root_option.exit_code == 2 and json.loads(root_option.stderr)["error"] == "usage"
    wallet = run("--json", "balance", wallet=alice.with_name("nowhere.json"))
    assert wallet.exit_code == 1 and json.loads(wallet.stderr)["error"] == "wallet_error"


def test_a_signed_request_without_a_key_says_signed_not_read():
    from cli.client import BankClient
    from cli.errors import CliError

    with pytest.raises(CliError) as refused:
        BankClient("http://127.0.0.1:9")._call("POST", "/v1/x", body={"a": 1}, auth=True)
    assert "this read" not in refused.value.message and "POST /v1/x" in refused.value.message
