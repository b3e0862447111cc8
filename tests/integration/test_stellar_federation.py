"""A wallet that speaks Stellar's federation (SEP-1 and SEP-2) resolves a TChain address: the
real ``stellar-sdk`` resolver against a real bank on loopback. TChain's own ``/federation``
answer stays the signed record TChain clients check (docs/protocol.md §7)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from stellar_sdk import Keypair
from stellar_sdk.client.requests_client import RequestsClient
from stellar_sdk.sep.exceptions import BadFederationResponseError
from stellar_sdk.sep.federation import resolve_account_id, resolve_stellar_address
from stellar_sdk.sep.stellar_toml import fetch_stellar_toml

from cli.local import LocalBank
from federation.records import verify_record
from federation.stellar import verify_sep2_answer
from tchain.errors import VerificationError
from tests.realbanks import register

BANK = "bank1.example"


class LoopbackDNS(RequestsClient):
    """stellar-sdk's own HTTP client, reaching ``bank1.example`` at the bank's loopback
    address as DNS would reach it in a deployment (the resolver asks
    ``http://bank1.example/.well-known/stellar.toml`` for an address ``*bank1.example``)."""

    def __init__(self, bank: LocalBank) -> None:
        super().__init__(num_retries=0)
        self.bank = bank
        self.asked: list[str] = []

    def get(self, url: str, params: dict[str, str] | None = None,
            max_content_size: int | None = None) -> Any:
        self.asked.append(url)
        local = url.replace(f"http://{BANK}", self.bank.url)
        return super().get(local, params, max_content_size=max_content_size)


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Iterator[LocalBank]:
    with LocalBank(tmp_path_factory.mktemp("sep") / "bank1", BANK) as running:
        yield running


@pytest.fixture(scope="module")
def alice(bank):
    return register(bank, "alice")


def test_stellar_toml_names_the_federation_server_and_the_banks_key(bank):
    toml = fetch_stellar_toml(f"127.0.0.1:{bank.port}", use_http=True)
    assert toml["FEDERATION_SERVER"] == f"{bank.url}/federation/sep2"
    key = Keypair.from_public_key(toml["SIGNING_KEY"])  # a valid G... strkey
    assert key.raw_public_key().hex() == bank.config.signing_key().public_key
    answer = requests.get(bank.url + "/.well-known/stellar.toml", timeout=10)
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Content-Type"].startswith("text/plain")


def test_the_stellar_sdk_resolver_resolves_a_tchain_address(bank, alice):
    client = LoopbackDNS(bank)
    record = resolve_stellar_address(f"alice*{BANK}", client=client, use_http=True)
    assert record.stellar_address == f"alice*{BANK}"
    assert record.account_id == alice.key.public_key  # hex: not a Stellar account (see §7)
    assert record.memo_type is None and record.memo is None
    assert client.asked == [f"http://{BANK}/.well-known/stellar.toml",
                            f"{bank.url}/federation/sep2"]


def test_the_stellar_sdk_resolves_back_from_the_key(bank, alice):
    record = resolve_account_id(alice.key.public_key, federation_url=f"{bank.url}/federation/sep2",
                                client=LoopbackDNS(bank))
    assert record.stellar_address == f"alice*{BANK}"


def test_an_unknown_address_is_a_404_the_resolver_reports(bank):
    with pytest.raises(BadFederationResponseError) as refused:
        resolve_stellar_address(f"nobody*{BANK}", client=LoopbackDNS(bank), use_http=True)
    assert refused.value.status == 404


def test_the_sep2_answer_carries_the_banks_signature_over_the_tchain_record(bank, alice):
    answer = requests.get(bank.url + "/federation/sep2", params={"type": "name",
                                                                 "q": f"alice*{BANK}"},
                          timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    doc = answer.json()
    assert set(doc) == {"stellar_address", "account_id", "chain", "validator", "sig"}
    key = bank.config.signing_key().public_key
    record = verify_sep2_answer(doc, key)
    assert record == {"address": f"alice*{BANK}", "account_id": alice.key.public_key,
                      "chain": alice.chain, "validator": BANK}
    doc["chain"] = "00" * 32
    with pytest.raises(VerificationError, match="not signed"):
        verify_sep2_answer(doc, key)


def test_tchains_own_federation_answer_is_unchanged(bank, alice):
    answer = requests.get(bank.url + "/federation", params={"type": "name",
                                                            "q": f"alice*{BANK}"}, timeout=10)
    signed = answer.json()
    assert set(signed) == {"record", "sig"}
    verify_record(signed, bank.config.signing_key().public_key)


@pytest.mark.parametrize("kind", ["txid", "forward"])
def test_lookups_sep2_has_and_a_bank_does_not_are_a_bad_request(bank, kind):
    answer = requests.get(bank.url + "/federation/sep2", params={"type": kind, "q": "x"},
                          timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
