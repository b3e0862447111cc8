"""The operator's commands (``tchain validator ...``) on real data directories, through the real
command line in-process (click's CliRunner): each refusal one sentence and exit 1, and nothing
left half done."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from cli.local import LocalBank
from cli.main import root
from federation.records import verify_well_known
from tchain.intents import register_request
from tchain.keys import SigningKey
from validator.config import BankConfig, init_bank, open_ledger

BANK = "bank1.example"


def tchain(*args: str) -> Result:
    return CliRunner().invoke(root, list(args), catch_exceptions=False)


def refused(result: Result, *words: str) -> str:
    """The command refused in one sentence on stderr, exit 1, no traceback; returns it."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    line = result.stderr
    assert line.startswith("error: ") and line.count("\n") == 1, line
    assert "Traceback" not in result.output
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "bank1"
    init_bank(path, name=BANK, url="http://127.0.0.1:9")
    return path


# --- init ------------------------------------------------------------------------------------

def test_init_that_fails_leaves_no_folder_behind(tmp_path):
    target = tmp_path / "new" / "banks" / "bank1"
    result = tchain("validator", "init", "--data", str(target), "--name", BANK,
                    "--url", "ftp://127.0.0.1:8701")
    refused(result, "--url")
    assert not (tmp_path / "new").exists()


def test_init_that_fails_half_way_leaves_the_folder_as_it_was(tmp_path):
    """The store cannot be made (a file is where it would go): the key and the config init
    had written are taken back, and what the folder held before is left alone."""
    target = tmp_path / "bank1"
    target.mkdir()
    (target / "ledger").write_text("not a store\n")
    result = tchain("validator", "init", "--data", str(target), "--name", BANK,
                    "--url", "http://127.0.0.1:8701")
    refused(result)
    assert sorted(p.name for p in target.iterdir()) == ["ledger"]
    assert (target / "ledger").read_text() == "not a store\n"


def test_init_still_refuses_to_overwrite_a_bank(data):
    before = (data / "validator.key").read_bytes()
    refused(tchain("validator", "init", "--data", str(data), "--name", BANK,
                   "--url", "http://127.0.0.1:8701"), "already holds a validator")
    assert (data / "validator.key").read_bytes() == before


# --- peers -----------------------------------------------------------------------------------

def test_peer_add_to_a_dead_url_is_one_plain_sentence(data):
    line = refused(tchain("validator", "peer", "add", "--data", str(data),
                          "http://127.0.0.1:9"), "http://127.0.0.1:9")
    for noise in ("HTTPConnectionPool", "urllib3", "Max retries", "NewConnectionError",
                  "object at 0x"):
        assert noise not in line, line


def test_peer_add_to_a_host_that_does_not_resolve_says_so(data):
    line = refused(tchain("validator", "peer", "add", "--data", str(data),
                          "http://no-such-host.invalid"), "no-such-host.invalid", "resolve")
    assert "HTTPConnectionPool" not in line and "Max retries" not in line


def test_peer_add_to_a_server_that_is_no_bank_says_so(data, tmp_path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        refused(tchain("validator", "peer", "add", "--data", str(data), url), url, "404")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_peer_list_of_a_bank_with_no_peers(data):
    result = tchain("validator", "peer", "list", "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "no peers" in result.stdout
    listed = tchain("validator", "peer", "list", "--data", str(data), "--json")
    assert json.loads(listed.stdout) == []


def test_removing_a_peer_that_is_not_pinned_is_refused(data):
    refused(tchain("validator", "peer", "remove", "--data", str(data), "bank9.example"),
            "bank9.example", "not")


# --- regulators ------------------------------------------------------------------------------

def test_regulators_are_listed_and_removed(data):
    key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert tchain("validator", "regulator", "add", "--data", str(data), key).exit_code == 0
    listed = tchain("validator", "regulator", "list", "--data", str(data), "--json")
    assert json.loads(listed.stdout) == [key]
    assert key in tchain("validator", "regulator", "list", "--data", str(data)).stdout
    removed = tchain("validator", "regulator", "remove", "--data", str(data), key, "--json")
    assert removed.exit_code == 0 and json.loads(removed.stdout)["removed"] is True
    assert json.loads(tchain("validator", "regulator", "list", "--data", str(data),
                             "--json").stdout) == []
    again = tchain("validator", "regulator", "remove", "--data", str(data), key)
    refused(again, key, "not a regulator")
    bad = tchain("validator", "regulator", "remove", "--data", str(data), "zz")
    assert bad.exit_code == 1 and "Traceback" not in bad.output


# --- assets ----------------------------------------------------------------------------------

def test_an_asset_added_after_init_can_be_deposited(data):
    ledger = open_ledger(BankConfig.load(data))
    try:
        key = SigningKey.generate()
        ledger.register(register_request(key, "alice", ledger.clock(), bank=BANK,
                                          kyc_record={"legal_name": "Alice"}))
    finally:
        ledger.store.close()
    refused(tchain("validator", "deposit", "--data", str(data), "alice", "100", "EUR"),
            "EUR")
    added = tchain("validator", "asset", "add", "--data", str(data), "EUR", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {"asset": f"{BANK}:EUR", "added": True,
                                        "assets": [f"{BANK}:USD", f"{BANK}:EUR"]}
    ok = tchain("validator", "deposit", "--data", str(data), "alice", "100", "EUR")
    assert ok.exit_code == 0, ok.output
    again = tchain("validator", "asset", "add", "--data", str(data), "EUR")
    assert again.exit_code == 0 and "already" in again.stdout
    listed = tchain("validator", "asset", "list", "--data", str(data), "--json")
    assert json.loads(listed.stdout) == [f"{BANK}:USD", f"{BANK}:EUR"]


@pytest.mark.parametrize("code", ["eur", "EURO-1", "", "ABCDEFGHIJKLM"])
def test_an_asset_code_that_is_not_one_is_refused(data, code):
    before = (data / "config.json").read_bytes()
    result = tchain("validator", "asset", "add", "--data", str(data), code)
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert (data / "config.json").read_bytes() == before


def test_an_asset_added_while_the_bank_serves_is_in_its_well_known_at_once(tmp_path):
    with LocalBank(tmp_path / "bank1", BANK) as bank:
        assert tchain("validator", "asset", "add", "--data", str(bank.data), "GBP").exit_code == 0
        signed = requests.get(bank.url + "/.well-known/tchain.json", timeout=10).json()
        assert verify_well_known(signed)["assets"] == [f"{BANK}:USD", f"{BANK}:GBP"]
