"""Hash-time-locked transfers through the engine, on in-process banks (docs/adr/0008): one
bank, two banks, the atomic swap, the refund, lost answers, a payee's bank down past the
expiry. After each: every chain verifies offline, every asset sums to zero, no hold is left
open and each bank's audit is clean."""

from __future__ import annotations

import secrets

import pytest

from tchain.errors import TChainError
from tchain.htlc import hash_of
from tchain.model import SignedEntry
from tests.helpers import Clock, Customer
from tests.interbank_net import Net, NetBank, pin, two_banks
from tests.interbank_net import all_sound as sound
from validator.metrics import _flows_in_flight

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"


@pytest.fixture
def world(tmp_path):
    return two_banks(tmp_path)


def secret() -> tuple[str, str]:
    preimage = secrets.token_hex(32)
    return preimage, hash_of(preimage)


def all_sound(*banks: NetBank) -> None:
    sound(*banks, chains_verify=True)


def across(world, expires_in: int = 60_000):
    """Alice at bank 1 with 1000 USD locks 500 for bob at bank 2; bank 2 has kept it."""
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    preimage, h = secret()
    usd = lock(b1, alice, bob, 500, USD, h, clock.now + expires_in, B2)
    net.run()
    return alice, bob, preimage, usd


def lock(bank: NetBank, payer, payee, amount: int, asset: str, h: str, expires: int,
         to_bank: str | None = None) -> SignedEntry:
    body = {"to": payee.chain, "asset": asset, "amount": str(amount), "hash": h,
            "expires": expires}
    if to_bank is not None:
        body["to_validator"] = to_bank
    return bank.submit(payer, "lock", body).outcome.entries[0]


def claim(bank: NetBank, payee, lock_entry: SignedEntry, preimage: str):
    return bank.submit(payee, "claim", {"lock": lock_entry.id, "preimage": preimage})


def refused(bank: NetBank, c, type_: str, body: dict) -> TChainError:
    with pytest.raises(TChainError) as e:
        bank.ledger.submit_one(bank.intent(c, type_, body))
    return e.value


# --- one bank ---------------------------------------------------------------------------------

def test_a_lock_claimed_at_one_bank_settles_both_chains_in_one_write(world):
    clock, b1, _b2, _net = world
    alice, bob = b1.join("alice"), b1.join("bob")
    b1.deposit(alice, 1000)
    preimage, h = secret()
    locked = lock(b1, alice, bob, 300, USD, h, clock.now + 60_000)
    assert b1.balance(alice, USD) == (1000, 300)
    entries = claim(b1, bob, locked, preimage).outcome.entries
    assert [e.kind for e in entries] == ["claim", "settle"]
    assert b1.balance(alice, USD) == (700, 0) and b1.balance(bob, USD) == (300, 0)
    all_sound(b1)


def test_a_wrong_preimage_a_late_claim_and_a_second_claim_are_refused(world):
    clock, b1, _b2, _net = world
    alice, bob, carol = b1.join("alice"), b1.join("bob"), b1.join("carol")
    b1.deposit(alice, 1000)
    preimage, h = secret()
    locked = lock(b1, alice, bob, 300, USD, h, clock.now + 60_000)
    wrong = refused(b1, bob, "claim", {"lock": locked.id, "preimage": "00" * 32})
    assert wrong.code == "bad_request"
    stranger = refused(b1, carol, "claim", {"lock": locked.id, "preimage": preimage})
    assert stranger.code == "forbidden"
    claim(b1, bob, locked, preimage)
    again = refused(b1, bob, "claim", {"lock": locked.id, "preimage": preimage})
    assert again.code == "conflict"
    late = lock(b1, alice, bob, 100, USD, h, clock.now + 20_000)
    clock.now += 20_000
    assert refused(b1, bob, "claim", {"lock": late.id, "preimage": preimage}).code == "expired"
    b1.interbank.tick()  # the bank's clock releases it: both sides are its customers
    assert b1.balance(alice, USD) == (700, 0)
    all_sound(b1)


def test_a_lock_outside_its_window_or_without_funds_is_refused(world):
    clock, b1, _b2, _net = world
    alice, bob = b1.join("alice"), b1.join("bob")
    b1.deposit(alice, 100)
    _, h = secret()
    body = {"to": bob.chain, "asset": USD, "amount": "50", "hash": h}
    assert refused(b1, alice, "lock", {**body, "expires": clock.now + 5_000}).code == \
        "bad_request"
    assert refused(b1, alice, "lock", {**body, "expires": clock.now + 31 * 86_400_000}).code \
        == "bad_request"
    assert refused(b1, alice, "lock", {**body, "amount": "500",
                                       "expires": clock.now + 60_000}).code == \
        "insufficient_funds"
    assert refused(b1, alice, "lock", {**body, "to": alice.chain,
                                       "expires": clock.now + 60_000}).code == "bad_request"
    all_sound(b1)


# --- two banks -------------------------------------------------------------------------------

def test_the_atomic_swap_across_two_banks(world):
    """alice@bank1 locks USD for bob@bank2 (expiry 2T); bob locks EUR for alice (expiry T) on
    the same hash; alice claims bob's lock with P; bob reads P from his own chain (the settle
    of his lock carries alice's claim) and claims alice's lock."""
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 1000, "EUR")
    preimage, h = secret()
    usd = lock(b1, alice, bob, 500, USD, h, clock.now + 120_000, B2)
    net.run()
    eur = lock(b2, bob, alice, 450, EUR, h, clock.now + 60_000, B1)
    net.run()
    claim(b1, alice, eur, preimage)
    net.run()
    with b2.ledger.store.read() as r:
        settle = SignedEntry.from_bytes(r.entry(bob.chain, b2.ledger.state(bob.chain).height))
    assert settle.kind == "settle"
    seen = settle.evidence_entry(0).intent.body.preimage  # what bob reads on his chain
    claim(b2, bob, usd, seen)
    net.run()
    assert b1.balance(alice, USD) == (500, 0) and b1.balance(alice, EUR) == (450, 0)
    assert b2.balance(bob, USD) == (500, 0) and b2.balance(bob, EUR) == (550, 0)
    all_sound(b1, b2)


def test_the_refund_nobody_claims_both_locks_are_released_after_expiry(world):
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 1000, "EUR")
    _, h = secret()
    lock(b1, alice, bob, 500, USD, h, clock.now + 120_000, B2)
    lock(b2, bob, alice, 450, EUR, h, clock.now + 60_000, B1)
    net.run()
    clock.now += 130_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0) and b2.balance(bob, EUR) == (1000, 0)
    all_sound(b1, b2)


def test_a_lost_claimed_is_repeated_and_settles(world):
    clock, b1, b2, net = world
    alice, bob, preimage, usd = across(world)
    b1.up = False  # the payer's bank is down: claimed is not delivered
    claim(b2, bob, usd, preimage)
    net.run()
    assert b1.balance(alice, USD) == (1000, 500)
    b1.up = True
    clock.now += 1_000
    net.run()
    assert b1.balance(alice, USD) == (500, 0)
    all_sound(b1, b2)


def test_answers_lost_both_ways_the_payee_banks_first_decision_stands(world):
    """Bob claims just before the expiry while bank 1 is down; past the expiry bank 1 asks
    and every answer is lost both ways; bank 2's decision (claimed) still settles it: never a
    release on bank 1's clock alone."""
    clock, b1, b2, net = world
    alice, bob, preimage, usd = across(world)
    b1.up = False
    clock.now += 59_000
    claim(b2, bob, usd, preimage)
    net.run(3)
    b1.up = True
    b1.loses_replies = b2.loses_replies = True
    clock.now += 10_000  # past the expiry by both clocks: bank 1 asks, answers are lost
    net.run(3)
    assert b1.balance(alice, USD) != (1000, 0)  # never released
    b1.loses_replies = b2.loses_replies = False
    clock.now += 31_000
    net.run()
    assert b1.balance(alice, USD) == (500, 0) and b2.balance(bob, USD) == (500, 0)
    all_sound(b1, b2)


def test_the_payee_bank_down_past_the_expiry_decides_when_back(world):
    clock, b1, b2, net = world
    alice, _bob, _preimage, _usd = across(world)
    b2.up = False
    clock.now += 70_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 500)  # held: bank 2 has not decided
    with b1.ledger.store.read() as r:
        assert _flows_in_flight(r) == {(B2, "lock"): 1}  # and the operator sees it
    b2.up = True
    clock.now += 31_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    all_sound(b1, b2)


def test_a_payee_bank_whose_clock_is_behind_is_asked_again_until_it_decides(tmp_path):
    """Bank 1's clock is 5 s ahead: past the expiry by its clock it asks, bank 2 (not there
    yet by its own) refuses to decide, and bank 1 asks again until bank 2 answers expired."""
    clock1 = Clock()
    clock2 = Clock(clock1.now - 5_000)
    b1, b2 = NetBank(tmp_path / "b1", B1, clock1), NetBank(tmp_path / "b2", B2, clock2)
    pin(b1, b2)
    net = Net(b1, b2)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    _, h = secret()
    lock(b1, alice, bob, 500, USD, h, clock1.now + 60_000, B2)
    net.run()
    for clock in (clock1, clock2):
        clock.now += 62_500  # bank 1: expired (and its margin); bank 2: 2.5 s to go
    net.run()
    assert b1.balance(alice, USD) == (1000, 500)
    waiting = b1.interbank.flow(b1.ledger.state(alice.chain).head)
    assert waiting["state"] == "awaiting_peer" and "expires at" in waiting["reason"]
    for clock in (clock1, clock2):
        clock.now += 5_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    all_sound(b1, b2)


def test_a_lock_its_payee_bank_refuses_stays_held_until_it_expires(world):
    """Bank 2 refuses a lock for a chain it does not have; the hold is not released early
    (the verifier allows a lock's release only after its expiry), then comes back."""
    clock, b1, _b2, net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    nobody = Customer("nobody")
    nobody.chain = "ee" * 32
    _, h = secret()
    lock(b1, alice, nobody, 500, USD, h, clock.now + 60_000, B2)
    net.run()
    assert b1.balance(alice, USD) == (1000, 500)
    clock.now += 63_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    all_sound(b1, _b2)
