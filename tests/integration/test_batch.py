"""POST /v1/intents/batch against a real server: one result per intent, in order, each
accepted or refused on its own; a refused one changes nothing, the others all commit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tchain.clock import now_ms
from tests.helpers import USD
from tests.integration.test_http_api import post, register, store_snapshot
from tests.realbanks import assert_chain_verifies, read, totals
from validator.operator import deposit


@pytest.fixture(scope="module")
def trio(bank):
    alice, bob, carol = (register(bank, n) for n in ("balice", "bbob", "bcarol"))
    deposit(bank.config, "balice", "1000", "USD")
    return alice, bob, carol


def test_a_batch_answers_each_intent_in_order_and_applies_only_the_good_ones(bank, trio):
    alice, bob, carol = trio
    t = now_ms()
    intents = [
        alice.payment(bob, "100", time=t),                    # ok, seq+1
        alice.payment(carol, "5000", seq=alice.seq + 2, time=t),  # insufficient funds
        alice.payment(carol, "50", seq=alice.seq + 2, time=t),  # ok: the refusal took no seq
        alice.payment(bob, "1", seq=alice.seq + 2, time=t),   # replayed seq: bad_seq
        {"intent": "not an intent", "sig": "00"},             # malformed
        bob.payment(carol, "30", time=t),                     # bob spends what he just got
    ]
    before = totals(bank)
    r = post(bank, "/v1/intents/batch", {"intents": intents})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 201, 409, 400, 201]
    assert [x.get("error") for x in results] == \
        [None, "insufficient_funds", None, "bad_seq", "bad_request", None]
    assert all(x["message"] for x in results if "error" in x)
    alice.seq += 2
    bob.seq += 1
    # each accepted result carries the entries a single submission would have answered
    assert [len(x["entries"]) for x in results if x["status"] == 201] == [2, 2, 2]
    store = read(bank, lambda r: {c.name: r.state(c.chain) for c in trio})
    assert {n: s.balances[USD].balance for n, s in store.items()} == \
        {"balice": 850, "bbob": 70, "bcarol": 80}
    assert totals(bank) == before  # money moved, none made or lost
    for c in trio:
        assert_chain_verifies(bank, c)


def test_a_batch_that_is_not_a_list_of_intents_is_refused_whole_and_changes_nothing(bank,
                                                                                     trio):
    before = store_snapshot(bank)
    for body in ({"intents": []}, {"intents": "x"}, [], {"intents": [{}], "more": 1},
                 {"intents": [{}] * 1001}):
        r = post(bank, "/v1/intents/batch", body)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "bad_request"
    assert store_snapshot(bank) == before


def test_concurrent_batches_and_singles_commit_every_payment_once(bank, trio):
    """Four clients at once, each its own payer (a batch of 40, or 40 single requests): the
    group commit shares transactions between them; every payment lands exactly once."""
    payers = [register(bank, f"gc{i}") for i in range(4)]
    payee = register(bank, "gcpayee")
    for p in payers:
        deposit(bank.config, p.name, "1000", "USD")
    t = now_ms()
    batches = []
    for p in payers:
        docs = []
        for _ in range(40):
            docs.append(p.payment(payee, "1", time=t))
            p.seq += 1
        batches.append(docs)

    def send(i: int) -> list[int]:
        if i % 2:
            return [x["status"] for x in
                    post(bank, "/v1/intents/batch", {"intents": batches[i]}).json()["results"]]
        return [post(bank, "/v1/intents", doc).status_code for doc in batches[i]]

    before = totals(bank)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(send, range(4)))
    assert statuses == [[201] * 40] * 4
    assert read(bank, lambda r: r.state(payee.chain)).balances[USD].balance == 160
    assert read(bank, lambda r: [r.state(p.chain).height for p in payers]) == [41] * 4
    assert totals(bank) == before
