"""The rules against the real store: every refusal carries its code and changes nothing."""

from __future__ import annotations

import copy

import pytest

from tchain.errors import TChainError
from tchain.intents import register_request
from tchain.keys import SigningKey
from tchain.rules import TIME_WINDOW_MS
from tests.helpers import BANK, T0, USD, Clock, asset_totals, join, snapshot, submit
from validator.ledger import Ledger


@pytest.fixture
def funded(ledger: Ledger):
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 1000)
    return alice, bob


def refused(ledger: Ledger, doc, code: str) -> TChainError:
    """Submit ``doc``, expect refusal with ``code``, and prove the store did not change."""
    before = snapshot(ledger.store)
    with pytest.raises(TChainError) as info:
        ledger.submit(doc)
    assert info.value.code == code, info.value.message
    assert snapshot(ledger.store) == before
    return info.value


def test_payment_moves_money_and_keeps_every_asset_at_zero(ledger, funded):
    alice, bob = funded
    debit, credit = submit(ledger, alice, alice.payment(bob, "300"))
    assert (debit.kind, credit.kind) == ("payment", "credit")
    assert credit.evidence[0] == debit.doc
    assert ledger.state(alice.chain).balances[USD].balance == 700
    assert ledger.state(bob.chain).balances[USD].balance == 300
    assert asset_totals(ledger.store) == {USD: 0}


def test_rejects_replayed_intent(ledger, funded):
    alice, bob = funded
    doc = alice.payment(bob, "100")
    submit(ledger, alice, doc)
    error = refused(ledger, doc, "bad_seq")
    assert error.detail["expected"] == 2


def test_rejects_skipped_seq(ledger, funded):
    alice, bob = funded
    refused(ledger, alice.payment(bob, "100", seq=5), "bad_seq")


def test_replay_with_altered_signature_is_not_applied_twice(ledger, funded):
    """The intent id never depends on signature bytes, and seq stops the second copy."""
    alice, bob = funded
    doc = alice.payment(bob, "100")
    submit(ledger, alice, doc)
    other = copy.deepcopy(doc)
    other["sig"] = doc["sig"][:64] + format((int(doc["sig"][64:], 16) + 1) % 16**64, "064x")
    with pytest.raises(TChainError):
        ledger.submit(other)
    assert ledger.state(bob.chain).balances[USD].balance == 100


def test_tampered_amount_breaks_signature(ledger, funded):
    alice, bob = funded
    doc = alice.payment(bob, "10")
    doc["intent"]["body"]["amount"] = "900"
    refused(ledger, doc, "bad_signature")


def test_intent_signed_by_wrong_key_is_refused(ledger, funded):
    alice, bob = funded
    mallory = SigningKey.generate()
    alice_key, alice.key = alice.key, mallory
    doc = alice.payment(bob, "10")
    alice.key = alice_key
    refused(ledger, doc, "bad_signature")


def test_rejects_overdraft(ledger, funded):
    alice, bob = funded
    error = refused(ledger, alice.payment(bob, "1001"), "insufficient_funds")
    assert error.detail["available"] == "1000"


def test_rejects_asset_never_held(ledger, funded):
    alice, bob = funded
    refused(ledger, alice.payment(bob, "1", asset=f"{BANK}:EUR"), "unknown_asset")


@pytest.mark.parametrize("amount", ["-5", "1.5", "0", "01", 5, "1e3", " 5", "9" * 39])
def test_rejects_bad_amounts(ledger, funded, amount):
    alice, bob = funded
    refused(ledger, alice.payment(bob, amount), "bad_request")


@pytest.mark.parametrize("skew", [TIME_WINDOW_MS + 1, -TIME_WINDOW_MS - 1])
def test_rejects_stale_time(ledger, funded, skew):
    alice, bob = funded
    refused(ledger, alice.payment(bob, "1", time=T0 + skew), "stale_time")


def test_accepts_time_within_window(ledger, funded):
    alice, bob = funded
    submit(ledger, alice, alice.payment(bob, "1", time=T0 + TIME_WINDOW_MS))


def test_rejects_unknown_recipient(ledger, funded):
    alice, bob = funded
    bob.chain = "ab" * 32
    refused(ledger, alice.payment(bob, "1"), "unknown_chain")


def test_rejects_payment_to_another_bank_without_peer(ledger, funded):
    alice, bob = funded
    doc = alice.intent("payment", {"to": bob.chain, "to_validator": "bank2.example",
                                   "asset": USD, "amount": "1"})
    refused(ledger, doc, "unknown_validator")


def test_rejects_payment_to_self(ledger, funded):
    alice, _ = funded
    refused(ledger, alice.payment(alice, "1"), "bad_request")


def test_rejects_unknown_fields_instead_of_dropping_them(ledger, funded):
    alice, bob = funded
    doc = alice.payment(bob, "1")
    doc["intent"]["body"]["extra"] = "x"
    refused(ledger, doc, "bad_request")


def test_daily_limit_is_enforced_and_resets_next_day(ledger: Ledger, clock: Clock):
    carol = join(ledger, "carol", params={"daily_limit": {USD: "500"}})
    dave = join(ledger, "dave")
    ledger.deposit(f"carol*{BANK}", USD, 2000)
    submit(ledger, carol, carol.payment(dave, "400"))
    refused(ledger, carol.payment(dave, "101"), "limit_exceeded")
    clock.now += 86_400_000
    submit(ledger, carol, carol.payment(dave, "500", time=clock.now))


def test_the_daily_limit_counts_offers_and_gives_back_what_was_released(ledger: Ledger,
                                                                         clock: Clock):
    """Found by the outside attacker: a chain at its daily limit sold 500 by an offer (a
    thief with the key could empty it at any price); a new user's released cross-bank
    payment still counted against the day."""
    carol = join(ledger, "carol", params={"daily_limit": {USD: "500"}})
    dave = join(ledger, "dave")
    ledger.deposit(f"carol*{BANK}", USD, 2000)
    eur = f"{BANK}:EUR"
    offer = {"sell": {"asset": USD, "amount": "400"}, "buy": {"asset": eur, "amount": "1"},
             "expires": clock.now + 60_000}
    [made] = submit(ledger, carol, carol.intent("offer", offer, time=clock.now))
    refused(ledger, carol.payment(dave, "101", time=clock.now), "limit_exceeded")
    refused(ledger, carol.intent("offer", {**offer, "sell": {"asset": USD, "amount": "101"}},
                                 time=clock.now), "limit_exceeded")
    submit(ledger, carol, carol.intent("cancel", {"offer": made.id}, time=clock.now))
    submit(ledger, carol, carol.payment(dave, "500", time=clock.now))  # the 400 came back


def test_kyc_recipients_param_refuses_recipient_without_kyc(ledger: Ledger):
    strict = join(ledger, "strict", params={"kyc_recipients": True})
    anon = join(ledger, "anon", kyc=False)
    known = join(ledger, "known")
    ledger.deposit(f"strict*{BANK}", USD, 100)
    refused(ledger, strict.payment(anon, "10"), "kyc_required")
    submit(ledger, strict, strict.payment(known, "10"))


def test_only_the_issuer_may_issue_and_within_max_supply(ledger: Ledger):
    alice = join(ledger, "alice", params={"max_supply": {"POINTS": "100"}})
    bob = join(ledger, "bob")
    points = f"alice*{BANK}:POINTS"
    forged = bob.intent("issue", {"to": alice.chain, "asset": points, "amount": "5"})
    refused(ledger, forged, "forbidden")
    submit(ledger, alice, alice.intent("issue", {"to": bob.chain, "asset": points,
                                                 "amount": "100"}))
    refused(ledger, alice.intent("issue", {"to": bob.chain, "asset": points, "amount": "1"}),
            "limit_exceeded")
    assert asset_totals(ledger.store)[points] == 0


def test_an_issuer_cannot_sell_past_its_max_supply_by_an_offer(ledger: Ledger):
    """Found by the outside attacker: an issuer refused an issue past its max supply sold
    5,000 of its asset by an offer, and the offer settled."""
    alice = join(ledger, "alice", params={"max_supply": {"POINTS": "100"}})
    points = f"alice*{BANK}:POINTS"
    sell = {"sell": {"asset": points, "amount": "60"}, "buy": {"asset": USD, "amount": "1"},
            "expires": T0 + 60_000}
    submit(ledger, alice, alice.intent("offer", sell))
    # 60 held for the open offer, which may yet settle: 41 more would pass 100
    refused(ledger, alice.intent("offer", {**sell, "sell": {"asset": points,
                                                            "amount": "41"}}),
            "limit_exceeded")
    refused(ledger, alice.intent("issue", {"to": join(ledger, "bob").chain, "asset": points,
                                           "amount": "41"}), "limit_exceeded")
    submit(ledger, alice, alice.intent("offer", {**sell, "sell": {"asset": points,
                                                                  "amount": "40"}}))


def test_redeem_returns_units_to_the_issuer(ledger: Ledger, funded):
    alice, _ = funded
    submit(ledger, alice, alice.intent("redeem", {"asset": USD, "amount": "400"}))
    assert ledger.state(alice.chain).balances[USD].balance == 600
    bank_chain = ledger.bank_chain()
    assert bank_chain is not None
    assert ledger.state(bank_chain).balances[USD].balance == -600
    assert asset_totals(ledger.store) == {USD: 0}


def test_register_name_and_key_are_unique(ledger: Ledger):
    alice = join(ledger, "alice")
    for doc in (register_request(SigningKey.generate(), "alice", T0, bank=BANK,
                                 kyc_record=None),
                register_request(alice.key, "alice2", T0, bank=BANK, kyc_record=None)):
        before = snapshot(ledger.store)
        with pytest.raises(TChainError) as info:
            ledger.register(doc)
        assert info.value.code == "conflict"
        assert snapshot(ledger.store) == before


@pytest.mark.parametrize("time", [T0, T0 - 10 * TIME_WINDOW_MS], ids=["fresh", "stale"])
def test_register_signed_for_another_bank_is_refused_and_writes_nothing(ledger: Ledger, time):
    """A registration names its bank: one signed for bank2 never opens a chain here, and is
    refused as that (not as stale) however old it is."""
    key = SigningKey.generate()
    doc = register_request(key, "alice", time, bank="bank2.example",
                           kyc_record={"legal_name": "Alice"})
    before = snapshot(ledger.store)
    with pytest.raises(TChainError) as info:
        ledger.register(doc)
    assert (info.value.code, info.value.status) == ("bad_request", 400)
    assert "bank2.example" in info.value.message
    assert snapshot(ledger.store) == before
    with ledger.store.read() as r:
        assert r.chain_by_owner(key.public_key) is None and r.chain_by_name("alice") is None


def test_register_that_names_no_bank_is_refused(ledger: Ledger):
    key = SigningKey.generate()
    doc = register_request(key, "alice", T0, bank=BANK, kyc_record=None)
    del doc["intent"]["body"]["bank"]
    doc["sig"] = key.sign("intent", doc["intent"])
    before = snapshot(ledger.store)
    with pytest.raises(TChainError, match="names the bank") as info:
        ledger.register(doc)
    assert info.value.code == "bad_request"
    assert snapshot(ledger.store) == before


def test_register_refuses_kyc_record_that_does_not_match_its_hash(ledger: Ledger):
    doc = register_request(SigningKey.generate(), "eve", T0, bank=BANK,
                           kyc_record={"legal_name": "Eve"})
    doc["kyc_record"] = {"legal_name": "Someone Else"}
    with pytest.raises(TChainError, match="hashes to"):
        ledger.register(doc)


def test_register_refuses_small_order_key(ledger: Ledger):
    doc = register_request(SigningKey.generate(), "eve", T0, bank=BANK, kyc_record=None)
    doc["intent"]["body"]["owner"] = "01" + "00" * 31
    with pytest.raises(TChainError) as info:
        ledger.register(doc)
    assert info.value.code == "bad_signature"


def test_kyc_record_is_kept_privately_never_in_the_chain(ledger: Ledger):
    alice = join(ledger, "alice")
    with ledger.store.read() as r:
        assert b"Alice" in (r.kyc(alice.chain) or b"")
        assert all(b"Alice" not in e for e in r.entries(alice.chain, 0, 10))


def test_rotate_key_hands_the_chain_to_the_new_key(ledger: Ledger, funded):
    alice, bob = funded
    new_key = SigningKey.generate()
    submit(ledger, alice, alice.intent("rotate_key", {"owner": new_key.public_key}))
    refused(ledger, alice.payment(bob, "1"), "bad_signature")
    alice.key = new_key
    submit(ledger, alice, alice.payment(bob, "1"))
    with ledger.store.read() as r:
        assert r.chain_by_owner(new_key.public_key) == alice.chain


def test_batch_decides_each_intent_independently_in_one_commit(ledger: Ledger, funded):
    alice, bob = funded
    good1 = alice.payment(bob, "100", seq=1)
    bad = alice.payment(bob, "5000", seq=2)     # overdraft
    good2 = alice.payment(bob, "100", seq=2)    # sees good1 already applied
    results = ledger.submit_many([good1, bad, good2])
    assert [r.error.code if r.error else "ok" for r in results] == \
        ["ok", "insufficient_funds", "ok"]
    assert ledger.state(bob.chain).balances[USD].balance == 200


def test_a_large_batch_checks_its_signatures_at_once_and_refuses_only_the_forged(
        ledger: Ledger, funded):
    """40 intents are checked on every core before they are decided (keys.valid_signatures):
    the two whose signatures are forged or by another key are refused as a single submission
    would refuse them, the others are applied in order."""
    alice, bob = funded
    docs = [alice.payment(bob, "1", seq=seq) for seq in range(1, 39)]
    forged = copy.deepcopy(docs[10])
    forged["sig"] = "00" * 64
    stranger = SigningKey.generate()
    by_stranger = copy.deepcopy(docs[20])
    by_stranger["sig"] = stranger.sign("intent", by_stranger["intent"])
    batch = [*docs[:10], forged, *docs[10:20], by_stranger, *docs[20:]]
    results = ledger.submit_many(batch)
    codes = [r.error.code if r.error else "ok" for r in results]
    assert codes == [*["ok"] * 10, "bad_signature", *["ok"] * 10, "bad_signature",
                     *["ok"] * 18]
    assert ledger.state(bob.chain).balances[USD].balance == 38


def test_a_plan_that_needs_holds_is_decided_in_the_transaction(ledger, funded, monkeypatch):
    # Plans are made from states decoded without their holds. A decision that looks one up
    # (tchain.state.holds_read says which) must then be made inside the write transaction,
    # with that hold loaded, not refused: here every decision looks one up first.
    import validator.ledger as ledger_module

    real_decide = ledger_module.decide
    looked_up = []

    def decide_reading_holds(v, intent, chain, *args, **kwargs):
        looked_up.append(chain.holds.get("ab" * 32))  # HoldsNotLoadedError unless loaded
        return real_decide(v, intent, chain, *args, **kwargs)

    monkeypatch.setattr(ledger_module, "decide", decide_reading_holds)
    monkeypatch.setattr(ledger_module, "holds_read", lambda intent: frozenset({"ab" * 32}))
    alice, bob = funded
    [result] = ledger.submit_many([alice.payment(bob, "300")])
    assert result.error is None, result.error
    assert looked_up == [None]  # only the decision inside the transaction got that far
    assert ledger.state(alice.chain).balances[USD].balance == 700
    assert asset_totals(ledger.store) == {USD: 0}


def test_no_balance_passes_what_an_amount_can_say(ledger: Ledger):
    """Found by the outside attacker: an issuer issued 10**38 - 1 three times, the balances
    passed 38 digits, and the payee's cross-bank payments then stuck at its peer."""
    alice = join(ledger, "alice")
    carol = join(ledger, "carol")
    big = f"alice*{BANK}:BIG"
    most = str(10**38 - 1)
    submit(ledger, alice, alice.intent("issue", {"to": carol.chain, "asset": big,
                                                 "amount": most}))
    before = snapshot(ledger.store)
    refused(ledger, alice.intent("issue", {"to": carol.chain, "asset": big, "amount": "1"}),
            "limit_exceeded")
    assert snapshot(ledger.store) == before
    assert ledger.state(carol.chain).balances[big].balance == 10**38 - 1
