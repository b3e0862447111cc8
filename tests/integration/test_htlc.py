"""Hash-time-locked transfers with real banks on loopback and the real ``tchain`` command
(docs/adr/0008-hash-time-locks.md): the atomic swap across two banks (two locks on one hash,
the second with the shorter expiry; alice claims with the secret, bob reads it from his chain
and claims), and the refund (nobody claims: both locks come back after their expiry, on the
payee banks' word). After each: every chain verifies offline, every asset sums to zero over
both banks, no hold is left open, and each bank's audit is clean."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.harness import audit_clean
from tests.realbanks import assert_every_chain_sound, eventually, read, totals
from tests.realwallets import customer, ok, run, two_banks

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("htlc")
    with two_banks(base) as (b1, b2):
        yield {"b1": b1, "b2": b2, "base": base}


@pytest.fixture(autouse=True)
def sound_after(banks: dict[str, Any]) -> Iterator[None]:
    yield
    b1, b2 = banks["b1"], banks["b2"]
    eventually(lambda: not any(read(b, lambda r: r.open_holds()) for b in (b1, b2)),
               timeout=40)
    for bank in (b1, b2):
        assert_every_chain_sound(bank)
        audit_clean(bank)
    assert all(t == 0 for t in totals(b1, b2).values()), totals(b1, b2)


def js(*args: str, wallet: Path) -> dict[str, Any]:
    return dict(json.loads(ok(*args, "--json", wallet=wallet).stdout))


def balances(path: Path) -> dict[str, tuple[int, int]]:
    shown = js("balance", wallet=path)["balances"]
    return {a: (int(b["balance"]), int(b["held"])) for a, b in shown.items()}


def test_the_atomic_swap_of_two_assets_across_two_banks(banks):
    alice = customer(banks["base"], "alice", banks["b1"], "1000")
    bob = customer(banks["base"], "bob", banks["b2"], "1000")
    secret = js("htlc", "secret", wallet=alice)
    usd = js("htlc", "lock", f"bob*{B2}", "500", USD, "--hash", secret["hash"],
             "--expires-in", "120", wallet=alice)["lock"]
    # bob sees alice's lock kept for him at his bank, then locks his side, expiring first
    seen = js("htlc", "show", usd, wallet=bob)
    assert (seen["state"], seen["amount"], seen["hash"]) == ("locked", "500", secret["hash"])
    eur = js("htlc", "lock", f"alice*{B1}", "450", EUR, "--hash", secret["hash"],
             "--expires-in", "60", wallet=bob)["lock"]
    wrong = run("htlc", "claim", eur, "--preimage", "00" * 32, wallet=alice)
    assert wrong.exit_code == 1 and "preimage" in wrong.stderr
    js("htlc", "claim", eur, "--preimage", secret["preimage"], wallet=alice)

    def shown_to_bob() -> bool:
        return js("htlc", "show", eur, wallet=bob)["state"] == "claimed"

    eventually(shown_to_bob)
    preimage = js("htlc", "show", eur, wallet=bob)["preimage"]  # read from his own chain
    assert preimage == secret["preimage"]
    js("htlc", "claim", usd, "--preimage", preimage, wallet=bob)
    eventually(lambda: js("htlc", "show", usd, wallet=alice)["state"] == "claimed")
    assert balances(alice) == {USD: (500, 0), EUR: (450, 0)}
    assert balances(bob) == {USD: (500, 0), EUR: (550, 0)}
    kinds = [row["kind"] for row in js("history", wallet=bob)["entries"]]
    assert kinds[-3:] == ["lock", "settle", "claim"]


def test_the_refund_nobody_claims_and_both_locks_come_back(banks):
    carol = customer(banks["base"], "carol", banks["b1"], "1000")
    dave = customer(banks["base"], "dave", banks["b2"], "1000")
    secret = js("htlc", "secret", wallet=carol)
    usd = js("htlc", "lock", f"dave*{B2}", "300", USD, "--hash", secret["hash"],
             "--expires-in", "13", wallet=carol)["lock"]
    eur = js("htlc", "lock", f"carol*{B1}", "200", EUR, "--hash", secret["hash"],
             "--expires-in", "11", wallet=dave)["lock"]
    assert balances(carol)[USD] == (1000, 300)
    time.sleep(11.5)
    late = run("htlc", "claim", eur, "--preimage", secret["preimage"], wallet=carol)
    assert late.exit_code == 1 and "expired" in late.stderr
    eventually(lambda: js("htlc", "show", usd, wallet=carol)["state"] == "released",
               timeout=40)
    eventually(lambda: js("htlc", "show", eur, wallet=dave)["state"] == "released",
               timeout=40)
    assert balances(carol)[USD] == (1000, 0) and balances(dave)[EUR] == (1000, 0)


def test_a_lock_between_two_customers_of_one_bank(banks):
    erin = customer(banks["base"], "erin", banks["b1"], "1000")
    frank = customer(banks["base"], "frank", banks["b1"])
    secret = js("htlc", "secret", wallet=erin)
    lock = js("htlc", "lock", f"frank*{B1}", "100", USD, "--hash", secret["hash"],
              "--expires-in", "60", wallet=erin)["lock"]
    assert js("htlc", "show", lock, wallet=frank)["state"] == "locked"
    js("htlc", "claim", lock, "--preimage", secret["preimage"], wallet=frank)
    again = run("htlc", "claim", lock, "--preimage", secret["preimage"], wallet=frank)
    assert again.exit_code == 1
    shown = js("htlc", "show", lock, wallet=erin)
    assert (shown["state"], shown["preimage"]) == ("claimed", secret["preimage"])
    assert balances(erin)[USD] == (900, 0) and balances(frank)[USD] == (100, 0)
