"""Execution plans with three real banks on loopback and the real ``tchain`` command
(docs/adr/0010-execution-plans.md): a DvP proposed at one bank, signed by both customers at
their own banks, approved and run by both contributing banks, seen by an observer bank; a
three-way swap across three banks, all or nothing; a plan naming a customer a bank does not
have, rejected everywhere. After each: every chain verifies offline, every asset sums to zero
over all banks, no hold is open, each bank's audit is clean."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cli.local import LocalBank
from cli.plans import swap_plan_file
from cli.wallet import Wallet
from tchain.clock import now_ms
from tchain.keys import SigningKey
from tchain.plans import Execution
from tests.hostile.harness import audit_clean
from tests.planbuild import DVP_TOML
from tests.realbanks import assert_every_chain_sound, eventually, read, signed_get, totals
from tests.realwallets import B1, B2, B3, PASSPHRASE, customer, ok, run, three_banks
from validator.plans import Kept, plan_key

USD, BOND, GBP = f"{B1}:USD", f"{B2}:BOND", f"{B3}:GBP"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("plans")
    with three_banks(base) as (b1, b2, b3):
        yield {"banks": (b1, b2, b3), "base": base,
               "alice": customer(base, "alice", b1, "5000"),
               "bob": customer(base, "bob", b2, "50"),
               "carol": customer(base, "carol", b3, "700")}


@pytest.fixture(autouse=True)
def sound_after(world: dict[str, Any]) -> Iterator[None]:
    yield
    banks = world["banks"]
    for bank in banks:
        assert read(bank, lambda r: r.open_holds()) == []
        assert_every_chain_sound(bank)
        audit_clean(bank)
    assert all(t == 0 for t in totals(*banks).values()), totals(*banks)


def plan_file(world: dict[str, Any], name: str, doc: dict[str, Any], toml: str = "") -> Path:
    path = world["base"] / (f"{name}.toml" if toml else f"{name}.json")
    path.write_text(toml or json.dumps(doc))
    return path


def _execution(bank: LocalBank, plan: str) -> Execution | None:
    """The plan's execution as ``bank`` keeps it (read from its store in this process)."""

    def get(r: Any) -> Execution | None:
        record = r.record("plans", plan_key(plan))
        if record is None:
            return None
        keys = {bank.name: bank.config.signing_key().public_key,
                **{p["name"]: p["key"] for p in r.peers()}}
        return Execution.replay(Kept.from_dict(record).log, keys)
    return read(bank, get)




def test_a_dvp_runs_once_both_customers_sign_and_the_observer_sees_it(world):
    b1, b2, b3 = world["banks"]
    before = totals(*world["banks"])
    plan = ok("plan", "propose", str(plan_file(world, "dvp", {}, DVP_TOML)),
              wallet=world["alice"]).stdout.strip()
    assert plan.startswith(f"{B1}/106/")
    assert "proposed" in ok("plan", "show", plan, wallet=world["alice"]).stdout
    signed = ok("plan", "sign", plan, wallet=world["alice"]).stdout
    assert "you give 1000 bank1.example:USD" in signed and "proposed" in signed
    assert read(b1, lambda r: r.open_holds()) == []  # nothing moves before every approval
    eventually(lambda: _execution(b2, plan) is not None)
    ok("plan", "sign", plan, wallet=world["bob"])
    for bank in world["banks"]:
        eventually(lambda bank=bank: _execution(bank, plan).state == "completed")
    shown = json.loads(ok("plan", "show", plan, "--json", wallet=world["bob"]).stdout)
    assert shown["state"] == "completed" and shown["approved_by"] == [B1, B2]
    assert [i["status"] for i in shown["instructions"]] == ["complete"] * 4
    assert [len(i["receipts"]) for i in shown["instructions"]] == [1] * 4
    assert "completed" in ok("plan", "show", plan, wallet=world["alice"]).stdout
    listed = json.loads(ok("plan", "list", "--json", wallet=world["alice"]).stdout)
    assert {"id": plan, "state": "completed", "proposer": f"alice*{B1}"} in listed["plans"]
    alice_key = world_key(world, "alice")  # a page of one plan record, and the next
    page = signed_get(b1, alice_key, "/v1/plans", "limit=1").json()
    assert len(page["plans"]) <= 1 and len(page["next"]) == 64
    bad = signed_get(b1, alice_key, "/v1/plans", "after=zz")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
    scraped = requests.get(b1.url + "/metrics", timeout=10).text  # plans by state
    assert 'tchain_plans{state="completed"}' in scraped
    # the observer bank keeps the same log, and serves it to no stranger
    assert {d.id for d in _execution(b3, plan).docs} == {d.id for d in _execution(b1, plan).docs}
    refused = signed_get(b3, world_key(world, "carol"), f"/v1/plans/{plan}")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert read(b3, lambda r: r.open_holds()) == []  # the observer moved nothing
    after = totals(*world["banks"])
    assert after == before
    assert _balance(b1, "alice", BOND) == 10 and _balance(b2, "bob", USD) == 1000


def world_key(world: dict[str, Any], name: str) -> SigningKey:
    return Wallet.load(world[name]).unlock(PASSPHRASE)


def test_a_three_way_swap_runs_across_three_banks(world):
    doc = swap_plan_file([(f"alice*{B1}", USD, "100", f"bob*{B2}"),
                          (f"bob*{B2}", BOND, "1", f"carol*{B3}"),
                          (f"carol*{B3}", GBP, "70", f"alice*{B1}")], 600_000)
    _swapped(world, "swap", doc)
    assert _balance(world["banks"][1], "bob", USD) == 1100  # 1000 from the DvP before
    assert _balance(world["banks"][2], "carol", BOND) == 1
    assert _balance(world["banks"][0], "alice", GBP) == 70


def _swapped(world: dict[str, Any], name: str, doc: dict[str, Any]) -> str:
    """A swap plan file proposed by alice, signed by alice, bob and carol at their banks,
    run until completed at every bank: the plan id."""
    plan = ok("plan", "propose", str(plan_file(world, name, doc)),
              wallet=world["alice"]).stdout.strip()
    ok("plan", "sign", plan, wallet=world["alice"])
    for who, bank in (("bob", world["banks"][1]), ("carol", world["banks"][2])):
        eventually(lambda bank=bank: _execution(bank, plan) is not None)
        ok("plan", "sign", plan, wallet=world[who])
    for bank in world["banks"]:
        eventually(lambda bank=bank: _execution(bank, plan).state == "completed")
    return plan


def _balance(bank: LocalBank, name: str, asset: str) -> int:
    def get(r: Any) -> int:
        state = r.state(r.chain_by_name(name))
        b = state.balances.get(asset)
        return 0 if b is None else b.balance
    return int(read(bank, get))


def test_a_plan_naming_a_customer_a_bank_does_not_have_fails_at_every_bank(world):
    doc = {"deadline_in": 600_000,
           "participants": [{"bank": B1, "role": "contributor"},
                            {"bank": B2, "role": "contributor"}],
           "instructions": [
               {"op": "hold", "account": f"alice*{B1}", "asset": USD, "amount": "100"},
               {"op": "transfer", "hold": 1, "to": f"nobody*{B2}"}]}
    plan = ok("plan", "propose", str(plan_file(world, "nobody", doc)),
              wallet=world["alice"]).stdout.strip()
    for bank in world["banks"][:2]:
        eventually(lambda bank=bank: _execution(bank, plan).state == "failed")
    refused = run("plan", "sign", plan, wallet=world["bob"])  # bob's bank is not asked
    assert refused.exit_code == 1
    shown = json.loads(ok("plan", "show", plan, "--json", wallet=world["alice"]).stdout)
    assert shown["state"] == "failed"


def test_a_bad_plan_file_changes_nothing(world):
    listed = ok("plan", "list", "--json", wallet=world["alice"]).stdout
    bad = plan_file(world, "bad", {"deadline_in": 1000, "participants": [],
                                   "instructions": []})
    refused = run("plan", "propose", str(bad), wallet=world["alice"])
    assert refused.exit_code == 1 and "participants must be a list of 1" in refused.stderr
    assert ok("plan", "list", "--json", wallet=world["alice"]).stdout == listed


def _dvp(bond: str = "10", **extra: Any) -> dict[str, Any]:
    return {"deadline_in": 600_000,
            "participants": [{"bank": B1, "role": "contributor"},
                             {"bank": B2, "role": "contributor"},
                             {"bank": B3, "role": "observer"}],
            "instructions": [
                {"op": "hold", "account": f"alice*{B1}", "asset": USD, "amount": "100"},
                {"op": "hold", "account": f"bob*{B2}", "asset": BOND, "amount": bond},
                {"op": "transfer", "hold": 1, "to": f"bob*{B2}"},
                {"op": "transfer", "hold": 2, "to": f"alice*{B1}"}], **extra}


def _signed(world: dict[str, Any], name: str, doc: dict[str, Any]) -> str:
    plan = ok("plan", "propose", str(plan_file(world, name, doc)),
              wallet=world["alice"]).stdout.strip()
    ok("plan", "sign", plan, wallet=world["alice"])
    eventually(lambda: _execution(world["banks"][1], plan) is not None)
    ok("plan", "sign", plan, wallet=world["bob"])
    return plan


def test_a_payer_short_of_funds_compensates_every_bank(world):
    b1, b2, _ = world["banks"]
    usd, bond = _balance(b1, "alice", USD), _balance(b2, "bob", BOND)
    plan = _signed(world, "short", _dvp(bond=str(bond + 1)))
    for bank in world["banks"]:
        eventually(lambda bank=bank: _execution(bank, plan).state == "compensated")
    shown = json.loads(ok("plan", "show", plan, "--json", wallet=world["alice"]).stdout)
    assert [i["status"] for i in shown["instructions"]] == ["complete", "failed", "pending",
                                                              "pending"]
    eventually(lambda: read(b1, lambda r: r.open_holds()) == [])
    assert (_balance(b1, "alice", USD), _balance(b2, "bob", BOND)) == (usd, bond)


def test_the_bank_whose_turn_it_is_down_past_the_deadline_is_compensated(world):
    b1, b2, _ = world["banks"]
    plan = ok("plan", "propose", str(plan_file(world, "down", _dvp(deadline_in=3000))),
              wallet=world["alice"]).stdout.strip()
    ok("plan", "sign", plan, wallet=world["alice"])
    eventually(lambda: B1 in _execution(b2, plan).approvals)
    b1.stop()  # alice's bank is down when her hold's turn comes
    try:
        ok("plan", "sign", plan, wallet=world["bob"])
        eventually(lambda: _execution(b2, plan).state == "compensated", timeout=30)
    finally:
        b1.start()
    eventually(lambda: _execution(b1, plan).state == "compensated", timeout=40)
    assert read(b1, lambda r: r.open_holds()) == []


def test_a_repo_runs_its_reverse_dvp_after_the_await(world):
    b1 = world["banks"][0]
    ok("pay", f"bob*{B2}", "5", USD, wallet=world["alice"])  # bob's own USD for the interest
    usd = _balance(b1, "alice", USD)
    repo = _dvp()
    repo["instructions"] += [
        {"op": "await", "until": now_ms() + 4000},
        {"op": "hold", "account": f"alice*{B1}", "asset": BOND, "amount": "10"},
        {"op": "hold", "account": f"bob*{B2}", "asset": USD, "amount": "105"},
        {"op": "transfer", "hold": 6, "to": f"bob*{B2}"},
        {"op": "transfer", "hold": 7, "to": f"alice*{B1}"}]
    plan = _signed(world, "repo", repo)
    eventually(lambda: _execution(b1, plan).turn() is not None and
               _execution(b1, plan).turn().op == "await")
    assert _balance(b1, "alice", USD) == usd - 100  # the first leg: cash out, bonds in
    for bank in world["banks"]:
        eventually(lambda bank=bank: _execution(bank, plan).state == "completed", timeout=30)
    assert _balance(b1, "alice", USD) == usd + 5  # the cash back, with the interest


BOND_AT_DELIVERY = f"""deadline_in = 600000
participants = [{{bank = "{B1}", role = "contributor"}}, {{bank = "{B2}", role = "contributor"}}]

[[instructions]]
op = "hold"
account = "alice*{B1}"
asset = "{USD}"
amount = "100"

[[instructions]]
op = "hold"
account = "bob*{B2}"
asset = "{BOND}"
amount = "2"

[[instructions]]
op = "transfer"
hold = 1
to = "bob*{B2}"

[[instructions]]
op = "transfer"
hold = 2
to = "dana*{B2}"

[[instructions]]
op = "issue"
account = "{B2}"
asset = "{BOND}"
amount = "5"
to = "dana*{B2}"
"""


def test_a_bond_issued_at_delivery_and_a_transfer_inside_one_bank_run_in_a_plan(world):
    """Alice pays bob 100 USD across banks; bob hands 2 BOND to dana, a customer of his own
    bank (one write there); bank2 then issues dana 5 new BOND (a deposit, in the plan)."""
    b1, b2, _ = world["banks"]
    dana = world.setdefault("dana", customer(world["base"], "dana", b2))
    before = _balance(b1, "alice", USD), _balance(b2, "bob", BOND), _balance(b2, "dana", BOND)
    plan = ok("plan", "propose", str(plan_file(world, "bond", {}, BOND_AT_DELIVERY)),
              wallet=world["alice"]).stdout.strip()
    ok("plan", "sign", plan, wallet=world["alice"])
    eventually(lambda: _execution(b2, plan) is not None)
    ok("plan", "sign", plan, wallet=world["bob"])
    for bank in (b1, b2):
        eventually(lambda bank=bank: _execution(bank, plan).state == "completed")
    shown = json.loads(ok("plan", "show", plan, "--json", wallet=dana).stdout)
    assert shown["state"] == "completed"
    assert [i["status"] for i in shown["instructions"]] == ["complete"] * 5
    assert _balance(b1, "alice", USD) == before[0] - 100
    assert _balance(b2, "bob", BOND) == before[1] - 2
    assert _balance(b2, "dana", BOND) == before[2] + 2 + 5


def test_a_three_way_swap_confirms_before_its_first_transfer_and_completes(world):
    """The confirmation round (docs/protocol.md §14, docs/adr/0014's Update): every
    contributor's confirmation of the first transfer is in every bank's log before that
    transfer's completion, and ``tchain plan show`` says who confirmed."""
    b1, b2, b3 = world["banks"]
    before = (_balance(b1, "alice", GBP), _balance(b2, "bob", USD),
              _balance(b3, "carol", BOND))
    doc = swap_plan_file([(f"alice*{B1}", USD, "10", f"bob*{B2}"),
                          (f"bob*{B2}", BOND, "1", f"carol*{B3}"),
                          (f"carol*{B3}", GBP, "7", f"alice*{B1}")], 600_000)
    plan = _swapped(world, "confirmed", doc)
    for bank in world["banks"]:
        ex = _execution(bank, plan)
        kinds = [(d.type, d.body.get("seq"), d.by) for d in ex.docs]
        first = kinds.index(("completion", 4, B1))  # alice's USD to bob: the first transfer
        assert {by for kind, seq, by in kinds[:first] if kind == "confirmation"} == {B1, B2, B3}
    shown = json.loads(ok("plan", "show", plan, "--json", wallet=world["carol"]).stdout)
    assert shown["plan"]["confirm"] is True and shown["confirmed_by"] == [B1, B2, B3]
    assert f"confirmed by {B1}, {B2}, {B3}" in ok("plan", "show", plan,
                                                  wallet=world["carol"]).stdout
    assert (_balance(b1, "alice", GBP), _balance(b2, "bob", USD),
            _balance(b3, "carol", BOND)) == (before[0] + 7, before[1] + 10, before[2] + 1)
