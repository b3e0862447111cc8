"""``GET /metrics`` of a real bank (2 worker processes) scraped and read with prometheus-client's
own parser: what the workers count is added up over all of them, whichever answers the scrape,
and starts again from nothing when the bank is served again; what the store holds (the outbox
waiting for a peer, flows in flight, holds, reader slots) is read when scraped."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cli.local import LocalBank
from tests.realbanks import pay, register
from validator.operator import deposit
from validator.peers import add_peer

B1, B2 = "bank1.example", "bank2.example"
USD = f"{B1}:USD"


def scrape(bank: LocalBank) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, by name and labels."""
    answer = requests.get(bank.url + "/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def banks(tmp_path_factory) -> Iterator[tuple[LocalBank, LocalBank]]:
    base = tmp_path_factory.mktemp("metrics")
    with LocalBank(base / "b1", B1, workers=2) as b1, LocalBank(base / "b2", B2) as b2:
        add_peer(b1.config, b2.url)
        add_peer(b2.config, b1.url)
        yield b1, b2


def post_bad_intent(bank: LocalBank) -> int:
    """A request on a connection of its own (the workers take new connections in turn), whose
    intent is refused as malformed."""
    c = http.client.HTTPConnection("127.0.0.1", bank.port, timeout=10)
    try:
        c.request("POST", "/v1/intents", body=b"{}", headers={"Content-Type":
                                                            "application/json"})
        answer = c.getresponse()
        answer.read()
        return answer.status
    finally:
        c.close()


def test_what_every_worker_counted_is_added_up_in_one_scrape(banks):
    b1, _ = banks
    before = scrape(b1)
    for _ in range(6):
        assert post_bad_intent(b1) == 400
    after = scrape(b1)
    assert value(after, "tchain_intents_refused_total", code="bad_request") - \
        value(before, "tchain_intents_refused_total", code="bad_request") == 6
    assert value(after, "tchain_http_requests_total", endpoint="/v1/intents", code="400") - \
        value(before, "tchain_http_requests_total", endpoint="/v1/intents", code="400") == 6
    # each scrape on a connection of its own: both workers answer, and alike
    assert len({value(scrape(b1), "tchain_intents_refused_total", code="bad_request")
                for _ in range(4)}) == 1


def test_what_the_http_server_refuses_itself_is_counted_too(banks):
    b1, _ = banks
    before = scrape(b1)
    answer = requests.get(b1.url + "/v1/offers?asset=" + "A" * 9000, timeout=10)
    assert answer.status_code == 414
    after = scrape(b1)
    assert value(after, "tchain_http_requests_total", endpoint="(server)", code="414") - \
        value(before, "tchain_http_requests_total", endpoint="(server)", code="414") == 1


def test_intents_accepted_and_refused_by_code_and_the_commits_they_took(banks):
    b1, _ = banks
    alice, bob = register(b1, "alice"), register(b1, "bob")
    deposit(b1.config, "alice", "1000", "USD")
    before = scrape(b1)
    assert pay(b1, alice, bob, B1, 100, USD).status_code == 201
    assert pay(b1, alice, bob, B1, 10**6, USD).status_code == 422
    after = scrape(b1)
    assert value(after, "tchain_intents_accepted_total") - \
        value(before, "tchain_intents_accepted_total") == 1
    assert value(after, "tchain_intents_refused_total", code="insufficient_funds") - \
        value(before, "tchain_intents_refused_total", code="insufficient_funds") == 1
    assert value(after, "tchain_http_requests_total", endpoint="/v1/intents", code="422") >= 1
    assert value(after, "tchain_store_commit_seconds_count") > \
        value(before, "tchain_store_commit_seconds_count")
    assert value(after, "tchain_store_reader_slots_max") == 256
    assert value(after, "tchain_store_reader_slots_in_use") >= 0


def test_a_peer_that_is_down_shows_as_outbox_backlog_flows_in_flight_and_holds(banks):
    b1, b2 = banks
    carol, dave = register(b1, "carol"), register(b2, "dave")
    deposit(b1.config, "carol", "500", "USD")
    b2.stop()
    try:
        assert pay(b1, carol, dave, B2, 200, USD).status_code == 202
        down = scrape(b1)
        assert value(down, "tchain_outbox_backlog", peer=B2) >= 1
        assert value(down, "tchain_flows_in_flight", peer=B2, type="transfer") == 1
        assert value(down, "tchain_holds_open") >= 1
    finally:
        b2.start()


def test_the_counts_start_again_when_the_bank_is_served_again(banks):
    b1, _ = banks
    assert post_bad_intent(b1) == 400
    assert value(scrape(b1), "tchain_intents_refused_total", code="bad_request") >= 1
    b1.stop()
    b1.start()
    assert value(scrape(b1), "tchain_intents_refused_total", code="bad_request") == 0
