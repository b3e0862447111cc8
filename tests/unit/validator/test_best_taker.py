"""The maker's bank picks the best takers, on in-process banks (docs/adr/0009-best-taker.md):
takes of an offer with a window wait for it, then are ranked and decided best first against
what remains; losers are refused ``outbid`` and their holds released. Across two banks and
between customers of one bank. After each: every chain verifies, every asset sums to zero, no
hold is left open and each bank's audit is clean."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tchain.encoding import parse
from tchain.errors import BadRequestRuleError
from tchain.model import SignedEntry
from tchain.proofs import verify_proof
from tchain.verify import verify_chain
from tests.interbank_net import NetBank, two_banks
from tests.unit.validator.test_partial_fills import B1, EUR, USD, all_sound, take_part
from validator.audit import audit
from validator.interbank import windows

WINDOW = 5_000
HERE_EUR = f"{B1}:EUR"


@pytest.fixture
def world(tmp_path):
    return two_banks(tmp_path)


def windowed_offer(bank: NetBank, maker, clock, *, buy=EUR, min_fill=10):
    """100 USD for 90 of ``buy``, in parts of ``min_fill``, ranking takes for WINDOW ms."""
    body = {"sell": {"asset": USD, "amount": "100"}, "buy": {"asset": buy, "amount": "90"},
            "expires": clock.now + 60_000, "window": WINDOW}
    if min_fill is not None:
        body["min_fill"] = str(min_fill)
    return bank.submit(maker, "offer", body).outcome.entries[0]


def maker_and_taker(b1: NetBank, b2: NetBank):
    """Alice at bank 1 with 1000 USD, bob at bank 2 with 1000 EUR."""
    alice, bob = b1.join("alice"), b2.join("bob")
    b1.deposit(alice, 1000)
    b2.deposit(bob, 1000, "EUR")
    return alice, bob


def three_of_one_bank(b1: NetBank):
    """Alice with 1000 USD, carol and dave with 1000 of bank 1's EUR, all at bank 1."""
    alice, carol, dave = b1.join("alice"), b1.join("carol"), b1.join("dave")
    b1.deposit(alice, 1000)
    b1.deposit(carol, 1000, "EUR")
    b1.deposit(dave, 1000, "EUR")
    return alice, carol, dave


def chains_verify(*banks: NetBank) -> None:
    for bank in banks:
        with bank.ledger.store.read() as r:
            for chain in r.chain_ids(None, 10**6):
                entries = [SignedEntry.from_bytes(e) for e in r.entries(chain, 0, 10**6)]
                verify_chain(entries, bank.key.public_key, bank.name, chain)


def refusals(net) -> list[str]:
    return [parse(raw)["message"].get("error") for _, raw in net.delivered
            if parse(raw)["message"]["type"] == "refused"]


def test_three_bids_across_banks_the_best_two_fill_and_the_third_is_outbid(world):
    clock, b1, b2, net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    bidders = {name: b2.join(name) for name in ("bob", "dave", "erin")}
    for c in bidders.values():
        b2.deposit(c, 1000, "EUR")
    offer = windowed_offer(b1, alice, clock)
    net.run()
    take_part(b2, bidders["dave"], offer, 60, 54)  # the price of 60: 0.9 a unit
    clock.now += 10
    take_part(b2, bidders["bob"], offer, 60, 60)  # 1.0 a unit: best
    clock.now += 10
    take_part(b2, bidders["erin"], offer, 40, 40)  # 1.0 a unit, after bob
    net.run()
    # inside the window nothing is decided: the takers' holds wait, the maker still holds all
    assert b1.balance(alice, USD) == (1000, 100)
    assert [b2.balance(c, EUR) for c in bidders.values()] == \
        [(1000, 60), (1000, 54), (1000, 40)]
    clock.now = offer.time + WINDOW
    net.run()
    assert b1.balance(alice, USD) == (900, 0) and b1.balance(alice, EUR) == (100, 0)
    assert b2.balance(bidders["bob"], USD) == (60, 0)
    assert b2.balance(bidders["bob"], EUR) == (940, 0)
    assert b2.balance(bidders["erin"], USD) == (40, 0)
    assert b2.balance(bidders["erin"], EUR) == (960, 0)
    assert b2.balance(bidders["dave"], EUR) == (1000, 0)  # outbid: released
    assert b2.balance(bidders["dave"], USD) == (0, 0)
    assert refusals(net) == ["outbid"]
    all_sound_and_verified(b1, b2)


def test_takes_of_one_bank_wait_and_are_ranked_the_same_way(world):
    clock, b1, b2, net = world
    alice, carol, dave = three_of_one_bank(b1)
    offer = windowed_offer(b1, alice, clock, buy=HERE_EUR)
    low = take_part(b1, dave, offer, 60, 54, sells=HERE_EUR)
    clock.now += 10
    high = take_part(b1, carol, offer, 60, 61, sells=HERE_EUR)
    assert [e.kind for e in low.outcome.entries] == [e.kind for e in high.outcome.entries] \
        == ["take"]  # held, waiting for the window
    assert b1.balance(alice, USD) == (1000, 100)
    report = audit(b1.ledger)  # a take waiting for the window is no stray hold
    assert report.ok, report.problems
    clock.now = offer.time + WINDOW
    net.run()
    assert b1.balance(carol, USD) == (60, 0) and b1.balance(carol, HERE_EUR) == (939, 0)
    assert b1.balance(dave, HERE_EUR) == (1000, 0)  # 40 left, it asked 60: outbid, released
    assert b1.balance(alice, USD) == (940, 40) and b1.balance(alice, HERE_EUR) == (61, 0)
    all_sound_after_cancel(b1, b2, net, alice, offer)


def test_a_cancel_in_the_window_refuses_a_peers_waiting_take(world):
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    offer = windowed_offer(b1, alice, clock, min_fill=None)
    net.run()
    take_part(b2, bob, offer, 100, 95)
    net.run()
    assert b2.balance(bob, EUR) == (1000, 95)
    all_sound_after_cancel(b1, b2, net, alice, offer)
    assert b2.balance(bob, EUR) == (1000, 0)
    assert refusals(net) == ["offer_closed"]
    assert b1.balance(alice, USD) == (1000, 0)


def test_a_cancel_in_the_window_releases_a_waiting_take_of_one_bank(world):
    clock, b1, b2, net = world
    alice, carol = b1.join("alice"), b1.join("carol")
    b1.deposit(alice, 1000)
    b1.deposit(carol, 1000, "EUR")
    offer = windowed_offer(b1, alice, clock, buy=HERE_EUR)
    take_part(b1, carol, offer, 50, 50, sells=HERE_EUR)
    assert b1.balance(carol, HERE_EUR) == (1000, 50)
    all_sound_after_cancel(b1, b2, net, alice, offer)
    assert b1.balance(carol, HERE_EUR) == (1000, 0)
    clock.now = offer.time + WINDOW
    net.run()
    all_sound(b1, b2)


def test_after_the_window_a_take_is_decided_at_once_and_may_bid(world):
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    offer = windowed_offer(b1, alice, clock)
    net.run()
    clock.now = offer.time + WINDOW
    take_part(b2, bob, offer, 50, 50)  # price 45
    net.run()
    assert b1.balance(alice, EUR) == (50, 0) and b2.balance(bob, USD) == (50, 0)
    all_sound_after_cancel(b1, b2, net, alice, offer)


def all_sound_after_cancel(b1, b2, net, alice, offer):
    b1.submit(alice, "cancel", {"offer": offer.id})
    net.run()
    all_sound_and_verified(b1, b2)


def all_sound_and_verified(b1, b2):
    all_sound(b1, b2)
    chains_verify(b1, b2)


def test_a_bid_above_the_price_of_an_offer_without_a_window_is_refused(world):
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    body = {"sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
            "expires": clock.now + 60_000}
    offer = b1.submit(alice, "offer", body).outcome.entries[0]
    net.run()
    with pytest.raises(BadRequestRuleError, match="price"):
        take_part(b2, bob, offer, 100, 91)
    assert b2.balance(bob, EUR) == (1000, 0)


def test_an_offer_whose_window_does_not_close_before_it_expires_is_refused(world):
    clock, b1, _b2, _net = world
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    with pytest.raises(BadRequestRuleError, match="window"):
        b1.submit(alice, "offer", {
            "sell": {"asset": USD, "amount": "100"}, "buy": {"asset": EUR, "amount": "90"},
            "expires": clock.now + WINDOW, "window": WINDOW})
    assert b1.balance(alice, USD) == (1000, 0)


def test_the_takers_bank_sets_its_deadline_past_the_window(world):
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    b2.ledger.settle_deadline_ms = 1_000  # shorter than the window
    offer = windowed_offer(b1, alice, clock)
    net.run()
    take = take_part(b2, bob, offer, 50, 50).outcome.entries[0]
    flow = b2.interbank.flow(take.id)
    assert flow is not None and flow["deadline"] >= offer.time + WINDOW + 1_000
    clock.now = offer.time + WINDOW
    net.run()
    assert b2.balance(bob, USD) == (50, 0)
    all_sound_after_cancel(b1, b2, net, alice, offer)


def test_a_peers_take_after_the_close_does_not_jump_the_takes_that_waited(world):
    """Found here: a take that came just after the window closed, before the clock's tick
    decided the waiting ones, was decided at once against all of the offer, and the takes
    that waited for the window lost to it. It is decided after them."""
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    late = b2.join("late")
    b2.deposit(late, 1000, "EUR")
    offer = windowed_offer(b1, alice, clock, min_fill=None)
    net.run()
    take_part(b2, bob, offer, 100, 90)  # waits for the window
    net.run()
    clock.now = offer.time + WINDOW  # closed; bank 1's clock has not ticked yet
    [message] = take_part(b2, late, offer, 100, 200).messages
    assert net.deliver(b2, message) == "peer answered pending"
    net.run()
    assert b2.balance(bob, USD) == (100, 0)  # the take that waited won
    assert b2.balance(late, EUR) == (1000, 0) and b2.balance(late, USD) == (0, 0)
    all_sound_and_verified(b1, b2)


def test_a_take_of_one_bank_after_the_close_does_not_jump_the_takes_that_waited(world):
    clock, b1, b2, net = world
    alice, carol, dave = three_of_one_bank(b1)
    offer = windowed_offer(b1, alice, clock, buy=HERE_EUR, min_fill=None)
    take_part(b1, carol, offer, 100, 90, sells=HERE_EUR)  # waits for the window
    clock.now = offer.time + WINDOW  # closed; the clock has not ticked yet
    late = take_part(b1, dave, offer, 100, 200, sells=HERE_EUR)
    assert [e.kind for e in late.outcome.entries] == ["take"]  # decided after those before
    net.run()
    assert b1.balance(carol, USD) == (100, 0)
    assert b1.balance(dave, HERE_EUR) == (1000, 0) and b1.balance(dave, USD) == (0, 0)
    all_sound_and_verified(b1, b2)


def test_the_takers_bank_asks_again_just_after_the_window_closes(world):
    """Found running the demo: a take answered pending was asked again by the backoff, up to
    30 s after the window closed, its hold waiting meanwhile."""
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    b2.ledger.settle_deadline_ms = 60_000
    offer = windowed_offer(b1, alice, clock)
    net.run()
    [message] = take_part(b2, bob, offer, 50, 50).messages
    for _ in range(12):  # the backoff alone would reach 30 s
        assert net.deliver(b2, message) == "peer answered pending"
    with b2.ledger.store.read() as r:
        assert r.record("outbox", message)["next_try"] == offer.time + WINDOW + 500
    clock.now = offer.time + WINDOW + 20_000  # long after: the backoff again
    assert net.deliver(b2, message) == "peer answered pending"
    with b2.ledger.store.read() as r:
        assert r.record("outbox", message)["next_try"] == clock.now + 30_000
    net.run()
    all_sound_after_cancel(b1, b2, net, alice, offer)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bids=st.lists(st.tuples(st.booleans(), st.integers(1, 60), st.integers(0, 30)),
                     min_size=1, max_size=6))
def test_whatever_the_bids_the_winners_are_the_rankings_and_nothing_is_made_or_lost(
        tmp_path_factory, bids):
    """Bids at both banks (here: at the maker's bank, or at bank 2), each for ``n`` of 100 at
    the price plus ``extra``, one ms apart: the winners are those a plain model of the ranking
    picks (p/n as exact fractions, then arrival), the maker gets what they gave, the losers
    get their holds back, and the banks stay sound."""
    clock, b1, b2, net = two_banks(tmp_path_factory.mktemp("bids"))
    alice = b1.join("alice")
    b1.deposit(alice, 1000)
    offer = windowed_offer(b1, alice, clock, min_fill=1)
    net.run()
    takers = []
    for i, (here, n, extra) in enumerate(bids):
        bank = b1 if here else b2
        taker = bank.join(f"taker{i}")
        if here:  # bank 2's EUR, paid to it from bank 2
            payer = b2.join(f"payer{i}")
            b2.deposit(payer, 1000, "EUR")
            b2.submit(payer, "payment", {"to": taker.chain, "to_validator": B1,
                                         "asset": EUR, "amount": "1000"})
            net.run()
        else:
            bank.deposit(taker, 1000, "EUR")
        takers.append((bank, taker, n, -(-n * 90 // 100) + extra))
    for bank, taker, n, p in takers:
        done = take_part(bank, taker, offer, n, p)
        for message in done.messages:
            net.deliver(bank, message)
        clock.now += 1
    clock.now = offer.time + WINDOW
    net.run()
    left, want = 100, set()
    order = sorted(range(len(takers)), key=lambda i: -Fraction(takers[i][3], takers[i][2]))
    for i in order:  # sorted() is stable: equal rates stay in arrival order
        if takers[i][2] <= left:
            left -= takers[i][2]
            want.add(i)
    got = {i for i, (bank, taker, n, p) in enumerate(takers) if bank.balance(taker, USD)[0]}
    assert got == want
    assert b1.balance(alice, USD)[0] == 1000 - sum(takers[i][2] for i in want)
    assert b1.balance(alice, EUR)[0] == sum(takers[i][3] for i in want)
    for i, (bank, taker, _n, p) in enumerate(takers):
        assert bank.balance(taker, EUR) == ((1000 - p) if i in want else 1000, 0)
    all_sound_after_cancel(b1, b2, net, alice, offer) if left else all_sound(b1, b2)
    chains_verify(b1, b2)


def test_a_maker_bank_that_fills_the_worse_bid_is_proven_unfair_by_the_takers_bank(
        world, monkeypatch):
    """Bank 1 lies: it ranks the bids worst first (its ranking reversed). Bank 2 keeps its
    take's pending answer, the outbid refusal and the news of the fill, and proves it."""
    real = windows.ranked
    monkeypatch.setattr(windows, "ranked", lambda bids, closes=None: real(bids, closes)[::-1])
    clock, b1, b2, net = world
    alice, bob, dave, offer = two_bidders_at_bank_2(world)
    bid_in_turn(world, offer, [(bob, 60, 60), (dave, 60, 54)])  # 1.0 a unit; the price, 0.9
    clock.now = offer.time + WINDOW
    net.run()
    assert b2.balance(dave, USD) == (60, 0) and b2.balance(bob, EUR) == (1000, 0)  # the lie
    [proof] = [p for p in b2.interbank.proofs() if p["type"] == "unfair_selection"]
    summary = verify_proof(proof)
    assert summary.culprit == b1.key.public_key and "outbid" in summary.summary
    all_sound_after_cancel(b1, b2, net, alice, offer)


def test_an_honest_selection_proves_nothing(world):
    """The worse bid fills after the better one did not fit: no proof."""
    clock, b1, b2, net = world
    alice, bob, dave, offer = two_bidders_at_bank_2(world)
    bid_in_turn(world, offer, [(bob, 70, 70), (dave, 40, 40), (dave, 30, 27)])
    # bob's 70 fills, dave's 40 is outbid (30 left), dave's 30 at 0.9 fits what is left
    clock.now = offer.time + WINDOW
    net.run()
    assert b1.balance(alice, USD) == (900, 0)
    assert [p for p in b2.interbank.proofs() if p["type"] == "unfair_selection"] == []
    all_sound(b1, b2)


def two_bidders_at_bank_2(world):
    """Alice's offer at bank 1 (known at bank 2), and bob and dave at bank 2 with 1000 EUR."""
    clock, b1, b2, net = world
    alice, bob = maker_and_taker(b1, b2)
    dave = b2.join("dave")
    b2.deposit(dave, 1000, "EUR")
    offer = windowed_offer(b1, alice, clock)
    net.run()
    return alice, bob, dave, offer


def bid_in_turn(world, offer, bids):
    """Each (taker at bank 2, n, p) takes ``offer``, reaching bank 1 a ms after the one before."""
    clock, _b1, b2, net = world
    for taker, gets, gives in bids:
        take_part(b2, taker, offer, gets, gives)
        net.run()
        clock.now += 1


def test_a_bank_back_after_the_offer_expired_refuses_the_waiting_takes_once(world):
    """A bank down from inside the window until after the offer expired decides the waiting
    takes when it is back: the offer expired, they are refused and released, the offer's
    hold released. Found here: that tick saw the offer's record twice (due on both timers),
    the second time as it was before the first decided it, and decided them again."""
    clock, b1, b2, net = world
    alice, bob, dave, offer = two_bidders_at_bank_2(world)
    b2.ledger.settle_deadline_ms = 120_000
    bid_in_turn(world, offer, [(bob, 60, 60), (dave, 60, 54)])
    clock.now = offer.time + 60_000  # past the window and the offer's expiry at once
    done = b1.interbank.tick()
    assert len([line for line in done if "refused" in line]) == 2, done
    net.run()
    assert b2.balance(bob, EUR) == b2.balance(dave, EUR) == (1000, 0)
    assert b1.balance(alice, USD) == (1000, 0)
    all_sound_and_verified(b1, b2)


def test_a_bank_back_after_the_offer_expired_releases_its_customers_waiting_takes(world):
    clock, b1, b2, net = world
    alice, carol, _dave = three_of_one_bank(b1)
    offer = windowed_offer(b1, alice, clock, buy=HERE_EUR)
    take_part(b1, carol, offer, 60, 60, sells=HERE_EUR)
    clock.now = offer.time + 60_000  # past the window and the offer's expiry at once
    net.run()
    assert b1.balance(carol, HERE_EUR) == (1000, 0) and b1.balance(alice, USD) == (1000, 0)
    all_sound_and_verified(b1, b2)
