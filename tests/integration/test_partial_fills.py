"""Partial fills with real banks on loopback and the real ``tchain`` command
(docs/adr/0007-partial-fills.md): parts of one offer taken across two banks and the rest
cancelled, a part taken between two customers of one bank, a part below min_fill refused,
parts racing past what remains. After each: every chain verifies offline, every asset sums to
zero over both banks, no hold is left open, and each bank's audit is clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.local import LocalBank
from tests.hostile.harness import audit_clean
from tests.realbanks import assert_every_chain_sound, eventually, read, totals
from tests.realwallets import customer, ok, run, start
from validator.peers import add_peer

B1, B2 = "bank1.example", "bank2.example"
USD, EUR1, EUR2 = f"{B1}:USD", f"{B1}:EUR", f"{B2}:EUR"


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("fills")
    b1 = LocalBank(base / "b1", B1, assets=("USD", "EUR"))
    b2 = LocalBank(base / "b2", B2, assets=("EUR",))
    with b1, b2:
        add_peer(b1.config, b2.url)
        add_peer(b2.config, b1.url)
        yield {"b1": b1, "b2": b2, "base": base}


@pytest.fixture(autouse=True)
def sound_after(banks: dict[str, Any]) -> Iterator[None]:
    yield
    b1, b2 = banks["b1"], banks["b2"]

    def settled() -> bool:
        return not any(read(b, lambda r: r.open_holds()) for b in (b1, b2))

    eventually(settled)
    for bank in (b1, b2):
        assert_every_chain_sound(bank)
        audit_clean(bank)
    assert all(t == 0 for t in totals(b1, b2).values()), totals(b1, b2)


def wallet(banks: dict[str, Any], name: str, bank: str, deposit: str, code: str = "") -> Path:
    b = banks[bank]
    path = customer(banks["base"], name, b, None if code else deposit)
    if code:
        ok("validator", "deposit", "--data", str(b.data), f"{name}*{b.name}", deposit, code)
    return path


def balances(path: Path) -> dict[str, tuple[int, int]]:
    shown = json.loads(ok("balance", "--json", wallet=path).stdout)["balances"]
    return {a: (int(b["balance"]), int(b["held"])) for a, b in shown.items()}


def create(path: Path, sell: tuple[str, str], buy: tuple[str, str], *extra: str) -> str:
    made = json.loads(ok("offer", "create", "--sell", *sell, "--buy", *buy, *extra, "--json",
                         wallet=path).stdout)
    return str(made["entry"])


def remaining(path: Path, offer: str) -> str | None:
    listed = json.loads(ok("offer", "list", "--json", wallet=path).stdout)["offers"]
    found = [o["remaining"] for o in listed if o["id"] == offer]
    return found[0] if found else None


def test_two_parts_across_two_banks_then_cancel_releases_only_the_rest(banks):
    carol = wallet(banks, "carol", "b2", "1000")
    alice = wallet(banks, "alice", "b1", "1000")
    offer = create(carol, ("100", EUR2), ("90", USD), "--min-fill", "10")
    eventually(lambda: remaining(alice, offer) == "100")
    assert "(parts of 10+)" in ok("offer", "list", wallet=alice).stdout
    taken = ok("offer", "take", offer[:16], "--amount", "30", wallet=alice).stdout
    assert "took 30 of offer" in taken and "settled" in taken
    eventually(lambda: remaining(alice, offer) == "70")
    ok("offer", "take", offer[:16], "--amount", "25", wallet=alice)  # 22.5, rounded up: 23
    eventually(lambda: balances(carol).get(USD) == (50, 0))
    assert balances(carol)[EUR2] == (945, 45)
    assert balances(alice) == {USD: (950, 0), EUR2: (55, 0)}
    eventually(lambda: remaining(alice, offer) == "45")
    assert remaining(carol, offer) == "45"
    fills = [e for e in json.loads(ok("history", "--json", wallet=carol).stdout)["entries"]
             if e["kind"] == "fill"]
    assert len(fills) == 2  # the maker's receipts, each leading to its exchange
    shown = ok("flow", fills[0]["id"][:12], wallet=carol).stdout
    assert shown.startswith(f"exchange with {B1}")
    ok("offer", "cancel", offer[:16], wallet=carol)
    assert balances(carol)[EUR2] == (945, 0)  # only the rest came back
    eventually(lambda: remaining(alice, offer) is None)


def test_a_part_between_two_customers_of_one_bank(banks):
    maker = wallet(banks, "maker1", "b1", "1000")
    taker = wallet(banks, "taker1", "b1", "1000", "EUR")
    offer = create(maker, ("100", USD), ("90", EUR1), "--min-fill", "20")
    taken = json.loads(ok("offer", "take", offer[:16], "--amount", "40", "--json",
                          wallet=taker).stdout)
    assert [e["kind"] for e in taken["entries"]] == ["take", "fill", "settle"]
    assert balances(taker) == {EUR1: (964, 0), USD: (40, 0)}
    assert balances(maker) == {USD: (960, 60), EUR1: (36, 0)}
    assert remaining(taker, offer) == "60"
    ok("offer", "take", offer[:16], "--amount", "60", wallet=taker)
    assert balances(maker) == {USD: (900, 0), EUR1: (90, 0)}
    assert remaining(taker, offer) is None


def test_a_part_below_min_fill_is_refused(banks):
    maker = wallet(banks, "maker2", "b2", "1000")
    taker = wallet(banks, "taker2", "b1", "1000")
    offer = create(maker, ("100", EUR2), ("90", USD), "--min-fill", "20")
    eventually(lambda: remaining(taker, offer) == "100")
    refused = run("offer", "take", offer[:16], "--amount", "19", wallet=taker)
    assert refused.exit_code == 1 and "min_fill" in refused.stderr
    whole_only = create(maker, ("10", EUR2), ("9", USD))
    eventually(lambda: remaining(taker, whole_only) == "10")
    refused = run("offer", "take", whole_only[:16], "--amount", "5", wallet=taker)
    assert refused.exit_code == 1 and "whole" in refused.stderr
    assert balances(taker) == {USD: (1000, 0)}
    ok("offer", "cancel", offer[:16], wallet=maker)
    ok("offer", "cancel", whole_only[:16], wallet=maker)


def test_racing_parts_fill_only_what_remains(banks):
    maker = wallet(banks, "maker3", "b2", "1000")
    offer = create(maker, ("100", EUR2), ("90", USD), "--min-fill", "10")
    takers = [wallet(banks, f"racer{i}", "b1", "1000") for i in range(3)]
    eventually(lambda: remaining(takers[0], offer) == "100")
    # three takes of 40 of the 100, at once, each its own process
    runs = [start(["offer", "take", offer[:16], "--amount", "40"], w) for w in takers]
    for process in runs:
        process.communicate(timeout=120)
    got = eventually(lambda: sorted(b for b in (balances(w).get(EUR2, (0, 0))[0]
                                                for w in takers))
                     if all(balances(w)[USD][1] == 0 for w in takers) else None)
    assert got == [0, 40, 40]  # two filled, one refused and released
    assert sorted(balances(w)[USD][0] for w in takers) == [964, 964, 1000]
    eventually(lambda: balances(maker).get(USD) == (72, 0))
    assert balances(maker)[EUR2] == (920, 20)
    eventually(lambda: remaining(takers[0], offer) == "20")
    ok("offer", "cancel", offer[:16], wallet=maker)
