"""Cross-bank flows between in-process banks: payments, offers, takes, deadlines, proofs."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tchain.digest import digest
from tchain.encoding import canonical, parse
from tchain.errors import TChainError, UnknownOfferError, VerificationError
from tchain.flow_states import CLOCK_MARGIN_MS
from tchain.messages import Message, sign_message
from tchain.model import Effect, SignedEntry
from tchain.proofs import verify_proof
from tchain.verify import verify_chain
from tests.campaign import scale
from tests.helpers import Clock, sign_entry_as, snapshot
from tests.interbank_net import Net, NetBank, pin, totals, two_banks
from validator.audit import audit

B1, B2 = "bank1.example", "bank2.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"


@pytest.fixture
def world(tmp_path):
    return two_banks(tmp_path)


def chain_ok(bank: NetBank, customer) -> None:
    with bank.ledger.store.read() as r:
        entries = r.entries(customer.chain, 0, 10**6)
    verify_chain(entries, bank.key.public_key, bank.name, customer.chain)


def pay_out(b1: NetBank, payer, payee, amount: int):
    """payer at bank1 pays payee (said to be) at bank2."""
    return b1.submit(payer, "payment", {"to": payee.chain, "to_validator": B2, "asset": USD,
                                        "amount": str(amount)})


def test_cross_bank_payment_settles_on_both_ledgers(world):
    _clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    result = pay_out(b1, alice, bob, 300)
    assert b1.balance(alice, USD) == (1000, 300)  # held, not yet debited
    [message] = result.messages
    assert net.deliver(b1, message) == "settled"
    assert b1.balance(alice, USD) == (700, 0)
    assert b2.balance(bob, USD) == (300, 0)
    assert totals(b1, b2)[USD] == 0
    chain_ok(b1, alice)
    chain_ok(b2, bob)


def test_a_repeated_transfer_gets_the_same_answer_and_changes_nothing(world):
    _clock, b1, b2, _net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    [message] = pay_out(b1, alice, bob, 300).messages
    with b1.ledger.store.read() as r:
        doc = r.record("outbox", message)["message"]
    first = b2.interbank.receive(doc, b1.key.public_key)
    second = b2.interbank.receive(doc, b1.key.public_key)
    assert first == second
    assert b2.balance(bob, USD) == (300, 0)


def test_refused_transfer_releases_the_hold(world):
    _clock, b1, b2, net = world
    alice, _bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    pay_out(b1, alice, alice, 300)  # no such chain at bank 2
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    chain_ok(b1, alice)


def test_unreachable_peer_past_the_deadline_keeps_the_hold_until_it_answers(world):
    """Past the deadline the hold stays: the peer may have credited just before it. Once the
    peer is back it answers the re-sent transfer with a refusal (expired), which releases."""
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.up = False
    result = pay_out(b1, alice, bob, 300)
    net.run()
    clock.now += 13_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 300)
    assert b1.interbank.flow(result.outcome.entries[0].id)["state"] == "pending"
    b2.up = True
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    assert "deadline" in b1.interbank.flow(result.outcome.entries[0].id)["reason"]
    assert b2.balance(bob, USD) == (0, 0)
    chain_ok(b1, alice)


def test_a_credit_whose_answers_are_lost_past_the_deadline_still_settles(world):
    """The two-generals window: bank 2 credits before the deadline, every answer is lost until
    long after it. Bank 1 must not release (that would create money at bank 2)."""
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.loses_replies = True
    pay_out(b1, alice, bob, 300)
    net.run()
    assert b2.balance(bob, USD) == (300, 0)
    clock.now += 60_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 300)
    b2.loses_replies = False
    net.run()
    assert b1.balance(alice, USD) == (700, 0)
    assert totals(b1, b2) == {USD: 0}
    chain_ok(b1, alice)


def exchange_world(world):
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 2000, "EUR")
    offer = b1.submit(alice, "offer", {
        "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
        "expires": clock.now + 60_000}).outcome.entries[0]
    net.run()
    assert [o["id"] for o in b2.interbank.offers(EUR)] == [offer.id]
    return alice, bob, offer


def take(bank, customer, offer, maker_bank=B1):
    return bank.submit(customer, "take", {
        "offer": offer.id, "validator": maker_bank,
        "sell": {"asset": EUR, "amount": "90"}, "buy": {"asset": USD, "amount": "100"}})


def test_two_bank_exchange_settles_both_sides(world):
    _clock, b1, b2, net = world
    alice, bob, offer = exchange_world(world)
    take(b2, bob, offer)
    net.run()
    assert b1.balance(alice, USD) == (900, 0)
    assert b1.balance(alice, EUR) == (90, 0)
    assert b2.balance(bob, EUR) == (1910, 0)
    assert b2.balance(bob, USD) == (100, 0)
    assert totals(b1, b2) == {USD: 0, EUR: 0}
    assert b1.interbank.offers(USD) == [] and b2.interbank.offers(USD) == []
    for bank, c in ((b1, alice), (b2, bob)):
        chain_ok(bank, c)


def test_racing_takers_one_wins_and_the_other_is_released(world):
    _clock, b1, b2, net = world
    _alice, bob, offer = exchange_world(world)
    carol = b2.join("carol")
    b2.deposit(carol, 500, "EUR")
    take(b2, bob, offer)
    take(b2, carol, offer)
    net.run()
    assert sorted([b2.balance(bob, USD)[0], b2.balance(carol, USD)[0]]) == [0, 100]
    assert b2.balance(carol, EUR)[1] == 0 and b2.balance(bob, EUR)[1] == 0
    assert totals(b1, b2) == {USD: 0, EUR: 0}


def test_non_settlement_leaves_a_proof(tmp_path):
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    b2 = NetBank(tmp_path / "b2", B2, clock, fault="skip-settle")
    pin(b1, b2)
    net = Net(b1, b2)
    alice, bob, offer = exchange_world((clock, b1, b2, net))
    take(b2, bob, offer)
    net.run()
    assert b1.balance(alice, EUR) == (90, 0)   # bank 1 settled its side
    assert b2.balance(bob, EUR) == (2000, 90)  # bank 2 never did
    clock.now += 11_000
    net.run()
    [proof] = b1.interbank.proofs()
    summary = verify_proof(proof)
    assert summary.culprit == b2.key.public_key
    assert len(proof["answers"]) == 1  # bank 2's signed "pending" answer is in it
    for _ in range(5):  # bank 1 keeps sending settle; the same answer is not kept twice
        clock.now += 31_000
        net.run()
    flow = b1.interbank.flow(SignedEntry.from_dict(proof["take"]).id)
    assert flow["state"] == "defaulted" and len(flow["answers"]) == 1
    assert b1.interbank.proofs() == [proof]
    tampered = dict(proof, deadline=proof["deadline"] + 1)
    with pytest.raises(Exception, match="signature"):
        verify_proof(tampered)


def test_a_late_settlement_completes_the_exchange_and_withdraws_the_proof(world):
    clock, b1, b2, net = world
    alice, bob, offer = exchange_world(world)
    b1.loses_replies = True  # bank 2 never hears take_accepted...
    take_entry = take(b2, bob, offer).outcome.entries[0]
    net.run()
    b2.up = False  # ...nor, while it is down, bank 1's settle
    clock.now += 11_000
    net.run()
    [proof] = b1.interbank.proofs()
    assert b1.interbank.flow(take_entry.id)["state"] == "defaulted"
    assert totals(b1, b2) != {USD: 0, EUR: 0}  # half done: what the proof documents
    b2.up, b1.loses_replies = True, False
    net.run()
    assert b1.interbank.proofs() == []
    flow = b1.interbank.flow(take_entry.id)
    assert flow["state"] == "settled" and "after the deadline" in flow["reason"]
    assert proof["culprit"] == b2.key.public_key
    assert totals(b1, b2) == {USD: 0, EUR: 0}
    assert b2.balance(bob, USD) == (100, 0) and b2.balance(bob, EUR) == (1910, 0)
    for bank, c in ((b1, alice), (b2, bob)):
        chain_ok(bank, c)


def test_cancel_and_expiry_release_the_offer_everywhere(world):
    clock, b1, b2, net = world
    alice, _bob, offer = exchange_world(world)
    b1.submit(alice, "cancel", {"offer": offer.id})
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    assert b2.interbank.offers(EUR) == []
    second = b1.submit(alice, "offer", {
        "sell": {"asset": USD, "amount": "50"}, "buy": {"asset": EUR, "amount": "40"},
        "expires": clock.now + 5_000}).outcome.entries[0]
    net.run()
    assert [o["id"] for o in b2.interbank.offers(EUR)] == [second.id]
    clock.now += 6_000
    net.run()
    assert b1.balance(alice, USD) == (1000, 0)
    assert b2.interbank.offers(EUR) == []
    chain_ok(b1, alice)


# --- refusals change nothing ---------------------------------------------------------------

@pytest.mark.parametrize(("type_", "body", "code"), [
    ("payment", {"to": "ab" * 32, "to_validator": "bank9.example", "asset": USD,
                 "amount": "1"}, "unknown_validator"),
    ("payment", {"to": "ab" * 32, "to_validator": B2, "asset": USD, "amount": "5000"},
     "insufficient_funds"),
    ("offer", {"sell": {"asset": USD, "amount": "10"}, "buy": {"asset": EUR, "amount": "9"},
               "expires": 1}, "bad_request"),
    ("offer", {"sell": {"asset": USD, "amount": "5000"}, "buy": {"asset": EUR, "amount": "9"},
               "expires": 10**13}, "insufficient_funds"),
    ("offer", {"sell": {"asset": USD, "amount": "10"}, "buy": {"asset": USD, "amount": "9"},
               "expires": 10**13}, "bad_request"),
    ("cancel", {"offer": "cd" * 32}, "unknown_offer"),
    ("take", {"offer": "cd" * 32, "validator": B2, "sell": {"asset": USD, "amount": "1"},
              "buy": {"asset": EUR, "amount": "1"}}, "unknown_offer"),
    ("take", {"offer": "cd" * 32, "validator": B1, "sell": {"asset": USD, "amount": "1"},
              "buy": {"asset": EUR, "amount": "1"}}, "unknown_offer"),  # here, but unknown
])
def test_refused_cross_bank_intents_change_nothing(world, type_, body, code):
    clock, b1, _b2, _net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    if type_ == "offer" and body["expires"] == 10**13:
        body = {**body, "expires": clock.now + 60_000}
    before = snapshot(b1.ledger.store)
    with pytest.raises(TChainError) as refused:
        b1.submit(alice, type_, body)
    assert refused.value.code == code
    assert snapshot(b1.ledger.store) == before
    with b1.ledger.store.read() as r:
        assert r.records("outbox") == []


def test_take_with_terms_that_do_not_mirror_the_offer_is_refused(world):
    _clock, _b1, b2, _net = world
    _alice, bob, offer = exchange_world(world)
    before = snapshot(b2.ledger.store)
    with pytest.raises(TChainError, match="do not mirror"):
        b2.submit(bob, "take", {"offer": offer.id, "validator": B1,
                                "sell": {"asset": EUR, "amount": "1"},
                                "buy": {"asset": USD, "amount": "100"}})
    assert snapshot(b2.ledger.store) == before


# --- the verifier refuses forged hold entries ------------------------------------------------

def forged(bank: NetBank, customer, kind: str, effects: list[Effect], evidence: list) -> bytes:
    """An entry the bank signs on the customer's chain outside the rules (a cheating bank)."""
    state = bank.ledger.state(customer.chain)
    entry = {"chain": state.chain, "height": state.height + 1, "prev": state.head,
             "time": bank.ledger.clock(), "kind": kind, "intent": None,
             "effects": [e.to_dict() for e in effects], "evidence": evidence,
             "validator": bank.key.public_key}
    return sign_entry_as(bank.key, entry).to_bytes()


def chain_with(bank: NetBank, customer, extra: bytes) -> list[bytes]:
    with bank.ledger.store.read() as r:
        return [*r.entries(customer.chain, 0, 10**6), extra]


def stored_entry(bank: NetBank, customer, height: int) -> SignedEntry:
    with bank.ledger.store.read() as r:
        return SignedEntry.from_bytes(r.entry(customer.chain, height))


def test_verifier_refuses_a_release_of_nothing_held(world):
    _clock, b1, _b2, _net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    deposit_credit = stored_entry(b1, alice, 1)
    extra = forged(b1, alice, "release", [Effect(USD, 0, -100)], [deposit_credit.doc])
    with pytest.raises(VerificationError, match="holds nothing open"):
        verify_chain(chain_with(b1, alice, extra), b1.key.public_key, B1, alice.chain)


def test_verifier_refuses_a_settle_for_more_than_the_peer_credited(world):
    _clock, b1, b2, _net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.up = False
    pay_out(b1, alice, bob, 300)
    hold = stored_entry(b1, alice, 2)
    small_credit = SignedEntry.from_bytes(forged(b2, bob, "credit", [Effect(USD, 30, 0)],
                                                 [hold.doc]))
    extra = forged(b1, alice, "settle", [Effect(USD, -300, -300)], [small_credit.doc])
    with pytest.raises(VerificationError, match="expected"):
        verify_chain(chain_with(b1, alice, extra), b1.key.public_key, B1, alice.chain)


def test_verifier_refuses_a_cross_bank_payment_that_holds_nothing(world):
    clock, b1, b2, _net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    intent = b1.intent(alice, "payment", {"to": bob.chain, "to_validator": B2, "asset": USD,
                                          "amount": "300"})
    state = b1.ledger.state(alice.chain)
    entry = sign_entry_as(b1.key, {
        "chain": alice.chain, "height": state.height + 1, "prev": state.head, "time": clock(),
        "kind": "payment", "intent": intent, "effects": [Effect(USD, -300, 0).to_dict()],
        "evidence": [], "validator": b1.key.public_key})
    with pytest.raises(VerificationError, match="effects"):
        verify_chain(chain_with(b1, alice, entry.to_bytes()), b1.key.public_key, B1,
                     alice.chain)


def test_every_asset_sums_to_zero_after_random_flows(tmp_path):
    """Payments both ways, a refused one, an exchange and a cancelled offer, with bank 2 down
    for a while: once the network settles, every asset is zero over both banks."""
    clock = Clock()
    b1, b2 = NetBank(tmp_path / "b1", B1, clock), NetBank(tmp_path / "b2", B2, clock)
    pin(b1, b2)
    net = Net(b1, b2)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 1000, "EUR")
    pay_out(b1, alice, bob, 100)
    b2.up = False
    pay_out(b1, alice, bob, 50)
    b2.submit(bob, "payment", {"to": alice.chain, "to_validator": B1, "asset": EUR,
                               "amount": "70"})
    net.run()
    clock.now += 1_000
    b2.up = True
    net.run()
    offer = b1.submit(alice, "offer", {"sell": {"asset": USD, "amount": "100"},
                                       "buy": {"asset": EUR, "amount": "90"},
                                       "expires": clock.now + 60_000}).outcome.entries[0]
    net.run()
    take(b2, bob, offer)
    net.run()
    assert totals(b1, b2) == {USD: 0, EUR: 0}
    assert b1.balance(alice, USD) == (750, 0) and b2.balance(bob, USD) == (250, 0)
    for bank, c in ((b1, alice), (b2, bob)):
        chain_ok(bank, c)


# --- property: any sequence of cross-bank steps conserves value -----------------------------

STEP = st.one_of(
    st.tuples(st.just("pay"), st.sampled_from([B1, B2]), st.booleans(), st.integers(1, 400)),
    st.tuples(st.just("offer"), st.integers(1, 300), st.integers(1, 300)),
    st.tuples(st.just("take"), st.integers(0, 5)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("toggle"), st.sampled_from([B1, B2])),
    st.tuples(st.just("lossy"), st.sampled_from([B1, B2])),
    st.tuples(st.just("tick"), st.integers(0, 15_000)),
    st.tuples(st.just("deliver"),),
    st.tuples(st.just("deliver"),),
)


@settings(max_examples=scale(100, 500), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(STEP, min_size=8, max_size=30))
def test_any_sequence_of_cross_bank_steps_conserves_value(steps):
    """Payments both ways (some across banks), offers, takes, cancels, banks going down and
    coming back, time passing: whatever is refused, after the network settles every asset sums
    to zero over both banks, nothing stays held, and every chain verifies."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        b1 = NetBank(Path(tmp) / "b1", B1, clock, deadline_ms=5_000)
        b2 = NetBank(Path(tmp) / "b2", B2, clock, deadline_ms=5_000)
        pin(b1, b2)
        net = Net(b1, b2)
        people = {B1: [b1.join("alice"), b1.join("carol")], B2: [b2.join("bob")]}
        b1.deposit(people[B1][0], 2000)
        b2.deposit(people[B2][0], 2000, "EUR")
        offers: list[SignedEntry] = []
        for step in steps:
            with contextlib.suppress(TChainError):  # a refusal: the property is what remains
                _apply_step(step, b1, b2, net, people, offers, clock)
        b1.up = b2.up = True
        b1.loses_replies = b2.loses_replies = False
        net.run(rounds=20)  # the network settles what it still can...
        clock.now += 60_000  # ...then every deadline and offer passes
        net.run(rounds=20)
        assert all(t == 0 for t in totals(b1, b2).values()), totals(b1, b2)
        for bank in (b1, b2):
            for c in people[bank.name]:
                assert all(held == 0 for _, held in
                           (bank.balance(c, a) for a in (USD, EUR))), "a hold stayed open"
                chain_ok(bank, c)


def _apply_step(step, b1, b2, net, people, offers, clock) -> None:
    banks = {B1: b1, B2: b2}
    kind = step[0]
    if kind == "pay":
        _, home, across, amount = step
        bank = banks[home]
        other = B2 if home == B1 else B1
        payer = people[home][0]
        to = people[other][0] if across else people[home][-1]
        if to is payer:
            return
        asset = USD if home == B1 else EUR
        bank.submit(payer, "payment", {"to": to.chain, "to_validator": other if across else
                                       home, "asset": asset, "amount": str(amount)})
    elif kind == "offer":
        entry = b1.submit(people[B1][0], "offer", {
            "sell": {"asset": USD, "amount": str(step[1])},
            "buy": {"asset": EUR, "amount": str(step[2])},
            "expires": clock.now + 20_000}).outcome.entries[0]
        offers.append(entry)
    elif kind == "take" and offers:
        offer = offers[step[1] % len(offers)]
        body = offer.intent.doc["intent"]["body"]
        b2.submit(people[B2][0], "take", {"offer": offer.id, "validator": B1,
                                          "sell": body["buy"], "buy": body["sell"]})
    elif kind == "cancel" and offers:
        b1.submit(people[B1][0], "cancel", {"offer": offers[step[1] % len(offers)].id})
    elif kind == "toggle":
        banks[step[1]].up = not banks[step[1]].up
    elif kind == "lossy":
        banks[step[1]].loses_replies = not banks[step[1]].loses_replies
    elif kind == "tick":
        clock.now += step[1]
        net.run(rounds=2)
    elif kind == "deliver":
        net.run(rounds=3)


class SkewedClock(Clock):
    """Another bank's clock: the shared clock plus a fixed skew."""

    def __init__(self, base: Clock, skew_ms: int) -> None:
        super().__init__(base.now)
        self.base, self.skew_ms = base, skew_ms

    def __call__(self) -> int:
        return self.base.now + self.skew_ms


@pytest.mark.parametrize("skew_ms", [-25_000, -1_500, 1_500, 25_000])
def test_bank_clock_skew_within_or_beyond_the_margin_never_loses_value(tmp_path, skew_ms):
    """Bank 2's clock off by less or more than the 2 s margin and the 10 s deadline: a payment
    and an exchange end settled or released on both ledgers alike, never half done."""
    clock = Clock()
    b1 = NetBank(tmp_path / "b1", B1, clock)
    b2 = NetBank(tmp_path / "b2", B2, SkewedClock(clock, skew_ms))
    pin(b1, b2)
    net = Net(b1, b2)
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 2000, "EUR")
    payment = pay_out(b1, alice, bob, 300).outcome.entries[0]
    offer = b1.submit(alice, "offer", {
        "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
        "expires": clock.now + 60_000}).outcome.entries[0]
    net.run()
    try:
        take(b2, bob, offer)
    except UnknownOfferError:  # dated ahead of bank 2's clock beyond the margin: not listed
        assert skew_ms < -CLOCK_MARGIN_MS  # (tchain.peer_dates)
    for _ in range(4):
        clock.now += 6_000
        net.run()
    clock.now += 60_000  # and the offer expires, if no take won it
    net.run()
    assert totals(b1, b2) == {USD: 0, EUR: 0}
    state = b1.interbank.flow(payment.id)["state"]
    assert state in ("settled", "released")
    assert b2.balance(bob, USD)[0] == (300 if state == "settled" else 0) + \
        (100 if b1.balance(alice, EUR)[0] == 90 else 0)
    for bank, c in ((b1, alice), (b2, bob)):
        assert all(bank.balance(c, a)[1] == 0 for a in (USD, EUR))
        chain_ok(bank, c)


def test_a_store_kept_before_timers_gets_them_at_its_first_tick(world):
    """Records put without a due time (as every record was before the timers index) are
    indexed once, at the first tick, and then seen to: here stale news of an offer is dropped.
    After that a tick with nothing due writes nothing."""
    clock, b1, _, _ = world  # no tick yet: its store has no timers mark, as an old one
    store = b1.ledger.store
    news = {"peer": B2, "message": {"message": {"type": "offer"}}, "attempts": 3,
            "next_try": clock.now + 10**9, "give_up": clock.now - 60_000, "flow": None,
            "last_error": None}
    waiting = dict(news, give_up=clock.now + 60_000)

    def old_store(w):
        w.put_record("outbox", "aa" * 32, news)     # no due: as an old store has them
        w.put_record("outbox", "bb" * 32, waiting)

    store.write(old_store)
    assert b1.interbank.tick() == [f"gave up on offer to {B2}"]
    with store.read() as r:
        assert r.record("outbox", "aa" * 32) is None
        assert r.record("outbox", "bb" * 32) == waiting
        assert r.due("outbox", clock.now + 10**9) == [("bb" * 32, waiting["give_up"] + 2_001)]
    assert b1.interbank.tick() == []
    clock.now += 63_000
    assert b1.interbank.tick() == [f"gave up on offer to {B2}"]
    with store.read() as r:
        assert r.record("outbox", "bb" * 32) is None and r.due("outbox", 2**62) == []


def test_the_sender_leaves_a_new_message_to_the_worker_that_tries_it_at_once(world):
    """With a handoff (the HTTP workers' ledger) the outbox sender does not take up a payment's
    message for that long: the worker that accepted it is sending it. Past it, the sender
    does (the worker may have died), and the payment still settles."""
    clock, b1, b2, net = world
    b1.ledger.handoff_ms = 3_000
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 100)
    [message] = pay_out(b1, alice, bob, 30).messages
    assert b1.interbank.due() == []
    clock.now += 3_000
    assert b1.interbank.due() == [message]
    net.run()
    assert b1.balance(alice, USD) == (70, 0) and b2.balance(bob, USD) == (30, 0)


def test_the_sender_finds_what_to_send_by_its_send_time_and_the_clock_clears_old_ones(world):
    """due() reads the send times, not every message queued; a message put off by a failed
    delivery is due again only at its next try, and the send time it had is cleared by the
    clock's round, as is that of a message once delivered."""
    clock, b1, b2, net = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 100)
    [message] = pay_out(b1, alice, bob, 30).messages
    assert b1.interbank.due() == [message]
    b1.interbank.delivery_failed(message, "bank2.example is down")
    assert b1.interbank.due() == []

    def send_times():
        with b1.ledger.store.read() as r:
            return r.due("sends", 2**62)

    assert send_times() == [(message, clock.now), (message, clock.now + 500)]
    b1.interbank.tick()
    assert send_times() == [(message, clock.now + 500)]
    clock.now += 500
    assert b1.interbank.due() == [message]
    net.run()
    assert b1.balance(alice, USD) == (70, 0) and b2.balance(bob, USD) == (30, 0)
    b1.interbank.tick()
    assert send_times() == []


def test_a_batch_of_peer_messages_is_checked_ahead_and_refuses_only_the_forged(world):
    """Bank 2 checks a batch's 40 signatures on every core before its write transaction: a
    message whose own signature is forged is refused, one whose hold entry is forged is
    answered "refused", and the other 18 are credited."""
    _clock, b1, b2, _ = world
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    ids = [pay_out(b1, alice, bob, 10).messages[0] for _ in range(20)]
    with b1.ledger.store.read() as r:
        docs = [r.record("outbox", mid)["message"] for mid in ids]
    docs[5] = dict(docs[5], sig=("1" if docs[5]["sig"][0] == "0" else "0") + docs[5]["sig"][1:])
    message = dict(docs[12]["message"])
    hold = dict(message["hold"], sig="00" * 64)
    docs[12] = sign_message(b1.key, "transfer", B1, B2, message["time"], hold=hold,
                            payer=message["payer"], deadline=message["deadline"],
                            kyc_required=False)
    answers = b2.interbank.receive_many(docs, b1.key.public_key)
    assert isinstance(answers[5], TChainError) and "not signed by its pinned key" in \
        answers[5].message
    kinds = [parse(a)["message"]["type"] for i, a in enumerate(answers) if i != 5]
    assert kinds == ["credited"] * 11 + ["refused"] + ["credited"] * 7
    assert "hold in the transfer message is not signed" in \
        parse(answers[12])["message"]["reason"]
    assert b2.balance(bob, USD) == (180, 0)


def test_every_message_s_spliced_bytes_are_its_canonical_bytes(world):
    """A message's digest and bytes are put together from its entries' own canonical bytes;
    each must equal what the reference path makes of the whole document (RFC 8785 over the
    parsed message), or a peer would find every signature wrong. Over each kind of message
    a payment and an exchange send, and every answer they get."""
    _clock, b1, b2, net = world
    _alice, bob, offer = exchange_world(world)
    payer = b1.join("payer")
    b1.deposit(payer, 500)
    pay_out(b1, payer, bob, 50)
    take(b2, bob, offer)
    net.run()
    docs = net.sent + [parse(answer) for _, answer in net.delivered]
    kinds = {doc["message"]["type"] for doc in docs}
    assert {"transfer", "credited", "offer", "offer_closed", "take", "take_accepted",
            "settle", "settled", "ack"} <= kinds, kinds
    for doc in docs:
        for read in (Message.trusted, Message.from_dict):
            message = read(parse(canonical(doc)))
            assert message.digest == digest("message", doc["message"])
            assert message.raw == rfc8785.dumps(doc)
    for _, answer in net.delivered:  # what a peer stores and serves again
        assert answer == rfc8785.dumps(parse(answer))


# --- an exchange between two customers of one bank (paper §5.1) --------------------------------

def test_two_customers_of_one_bank_exchange_at_once_and_the_peers_hear_the_offer_closed(world):
    """A new user found that a customer could not take an offer of their own bank ("not
    supported yet"): the paper's simplest exchange. Now the take, the maker's settle and the
    taker's settle are written in one transaction, the chains prove it as they would across
    banks, the offer closes everywhere, and a second take finds it closed."""
    _clock, b1, b2, net = world
    alice, _bob, offer = exchange_world(world)  # alice at bank 1 sells 100 USD for 90 EUR
    carol, dave = b1.join("carol"), b1.join("dave")
    b1.deposit(carol, 500, "EUR")
    net.run()
    assert [o["id"] for o in b2.interbank.offers(USD)] == [offer.id]
    b1_eur = f"{B1}:EUR"
    here = b1.submit(alice, "offer", {"sell": {"asset": USD, "amount": "40"},
                                      "buy": {"asset": b1_eur, "amount": "30"},
                                      "expires": _clock.now + 60_000}).outcome.entries[0]
    terms = {"offer": here.id, "validator": B1, "sell": {"asset": b1_eur, "amount": "30"},
             "buy": {"asset": USD, "amount": "40"}}
    before_totals = totals(b1, b2)
    result = b1.submit(carol, "take", terms)
    take, sold, bought = result.outcome.entries
    assert (take.kind, sold.kind, bought.kind) == ("take", "settle", "settle")
    assert b1.balance(alice, USD) == (960, 100)  # 40 sold; the first offer still holds 100
    assert b1.balance(alice, b1_eur) == (30, 0)
    assert b1.balance(carol, b1_eur) == (470, 0) and b1.balance(carol, USD) == (40, 0)
    assert totals(b1, b2) == before_totals
    net.run()
    assert here.id not in [o["id"] for o in b2.interbank.offers(USD)]
    b1.deposit(dave, 100, "EUR")
    with pytest.raises(TChainError) as closed:
        b1.submit(dave, "take", terms)
    assert closed.value.code == "offer_closed"
    for c in (alice, carol):
        chain_ok(b1, c)
    assert audit(b1.ledger).ok, audit(b1.ledger).problems


def test_a_chain_cannot_take_its_own_offer(world):
    clock, b1, _b2, _net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    b1.deposit(alice, 100, "EUR")
    offer = b1.submit(alice, "offer", {"sell": {"asset": USD, "amount": "40"},
                                       "buy": {"asset": f"{B1}:EUR", "amount": "30"},
                                       "expires": clock.now + 60_000}).outcome.entries[0]
    before = snapshot(b1.ledger.store)
    with pytest.raises(TChainError) as refused:
        b1.submit(alice, "take", {"offer": offer.id, "validator": B1,
                                  "sell": {"asset": f"{B1}:EUR", "amount": "30"},
                                  "buy": {"asset": USD, "amount": "40"}})
    assert refused.value.code == "bad_request"
    assert snapshot(b1.ledger.store) == before


@pytest.mark.parametrize("bank", ["bank9.example", "nobody.example"])
def test_an_offer_to_buy_an_iou_of_a_bank_nobody_here_trusts_is_refused(world, bank):
    """A new user found funds held for an offer nobody could ever take."""
    clock, b1, _b2, _net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    before = snapshot(b1.ledger.store)
    with pytest.raises(TChainError) as refused:
        b1.submit(alice, "offer", {"sell": {"asset": USD, "amount": "40"},
                                   "buy": {"asset": f"{bank}:GOLD", "amount": "1"},
                                   "expires": clock.now + 60_000})
    assert refused.value.code == "unknown_validator"
    assert snapshot(b1.ledger.store) == before


def test_news_of_a_close_that_outruns_the_offer_keeps_it_unlisted(world):
    """An offer taken here at once queues its news and its close together; a peer that gets
    the close first must not list the offer when it comes."""
    clock, b1, b2, net = world
    alice, carol = b1.join("alice"), b1.join("carol")
    b1.deposit(alice, 1000)
    b1.deposit(carol, 500, "EUR")
    offer = b1.submit(alice, "offer", {"sell": {"asset": USD, "amount": "40"},
                                       "buy": {"asset": f"{B1}:EUR", "amount": "30"},
                                       "expires": clock.now + 60_000}).outcome.entries[0]
    b1.submit(carol, "take", {"offer": offer.id, "validator": B1,
                              "sell": {"asset": f"{B1}:EUR", "amount": "30"},
                              "buy": {"asset": USD, "amount": "40"}})
    with b1.ledger.store.read() as r:
        queued = {item["message"]["message"]["type"]: mid for mid, item in r.records("outbox")}
    assert net.deliver(b1, queued["offer_closed"]) == "ack"
    assert net.deliver(b1, queued["offer"]) == "ack"
    assert b2.interbank.offers(None) == []
    clock.now += 31 * 86_400_000
    b2.interbank.tick()  # and the memory of the close goes when no such offer could be open
    with b2.ledger.store.read() as r:
        assert r.count("offers") == 0
