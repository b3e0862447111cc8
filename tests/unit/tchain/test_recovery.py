"""Recovering a lost key with the bank's help (the paper's KYC-and-2FA role): a new key asks
with the chain's KYC record, waits the chain's recovery delay, and the current key may cancel;
the offline verifier follows the owner change."""

from __future__ import annotations

import pytest

from tchain.encoding import canonical
from tchain.errors import TChainError
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.verify import verify_chain
from tests.helpers import BANK, USD, Customer, join, sign_entry_as, snapshot, submit
from validator.interbank import Interbank

DELAY = 60_000
KYC = {"legal_name": "Alice", "id": "X123", "recovery_code": "K7Q2M4RZ3XW3N6PBT5VJC4HDLA"}


@pytest.fixture
def alice(ledger):
    c = Customer("alice")
    c.chain = ledger.register(register_request(
        c.key, "alice", ledger.clock(), bank=BANK, kyc_record=KYC,
        params={"recovery_delay": str(DELAY)})).id
    ledger.deposit(f"alice*{BANK}", USD, 1000)
    return c


def ask(ledger, chain: str, new: SigningKey, kyc=KYC, *, seq: int = 0,
        signer: SigningKey | None = None):
    intent = sign_intent(signer or new, "recover", chain, seq, ledger.clock(),
                         {"owner": new.public_key})
    return ledger.recover(chain, {**intent, "kyc_record": kyc})


def verify_with(ledger, chain: str, head, **fields):
    """Verify the chain as stored plus one entry the bank signs after ``head`` with
    ``fields``: what a dishonest bank could serve a wallet."""
    forged = sign_entry_as(ledger.bank.key, {
        "chain": chain, "height": head.height + 1, "prev": head.head,
        "validator": ledger.bank.public_key, **fields})
    return verify_chain([*chain_of(ledger, chain), canonical(forged.doc)],
                        ledger.bank.public_key, BANK, chain)


def chain_of(ledger, chain: str) -> list[bytes]:
    with ledger.store.read() as r:
        return r.entries(chain, 0, 10**6)


def test_a_lost_key_is_recovered_after_the_delay_and_the_verifier_follows(ledger, clock, alice):
    bob = join(ledger, "bob")
    new = SigningKey.generate()
    entry, after = ask(ledger, alice.chain, new)
    assert entry.kind == "recover" and after.recovery.at == clock.now + DELAY
    # during the delay the old key still owns the chain; the new one does not yet
    submit(ledger, alice, alice.payment(bob, "10"))
    with pytest.raises(TChainError) as early:
        ledger.submit(sign_intent(new, "payment", alice.chain, alice.seq + 1, clock(), {
            "to": bob.chain, "to_validator": BANK, "asset": USD, "amount": "1"}))
    assert early.value.code == "bad_signature"
    clock.now += DELAY
    assert any("recovered" in line for line in Interbank(ledger).tick())
    with ledger.store.read() as r:
        assert r.chain_by_owner(new.public_key) == alice.chain
        assert r.chain_by_owner(alice.key.public_key) is None
    # now the new key owns it, the old one is refused
    with pytest.raises(TChainError) as old:
        ledger.submit(alice.payment(bob, "1"))
    assert old.value.code == "bad_signature"
    alice.key = new
    submit(ledger, alice, alice.payment(bob, "5"))
    key = ledger.bank.public_key
    state = verify_chain(chain_of(ledger, alice.chain), key, BANK, alice.chain)
    assert state.owner == new.public_key and state.balances[USD].balance == 985
    kinds = [SignedEntry.from_bytes(raw).kind for raw in chain_of(ledger, alice.chain)]
    assert kinds[-4:] == ["recover", "payment", "recovered", "payment"]


def test_the_current_key_cancels_a_recovery_it_did_not_ask_for(ledger, clock, alice):
    thief = SigningKey.generate()
    entry, _ = ask(ledger, alice.chain, thief)  # someone with alice's KYC record
    submit(ledger, alice, alice.intent("cancel_recovery", {"recovery": entry.id}, time=clock()))
    clock.now += DELAY + 1
    assert Interbank(ledger).tick() == []
    with ledger.store.read() as r:
        assert r.chain_by_owner(thief.public_key) is None  # kept for the recovery, let go
        assert r.chain_by_owner(alice.key.public_key) == alice.chain
    submit(ledger, alice, alice.intent("rotate_key", {"owner": SigningKey.generate().public_key},
                                       time=clock()))
    verify_chain(chain_of(ledger, alice.chain), ledger.bank.public_key, BANK, alice.chain)


@pytest.mark.parametrize(("case", "code"), [
    ("wrong_kyc", "forbidden"), ("no_kyc_at_register", "forbidden"),
    ("signed_by_another_key", "bad_signature"), ("seq_not_zero", "bad_seq"),
    ("pending_already", "conflict"), ("key_owns_a_chain", "conflict"),
    ("to_the_current_key", "conflict"), ("no_recovery_code", "forbidden"),
    ("the_banks_own_chain", "forbidden"),
    ("sent_again_after_its_cancel", "conflict"),
])
def test_a_recovery_that_must_not_be_is_refused_and_writes_nothing(ledger, clock, alice, case,
                                                                   code):
    new = SigningKey.generate()
    chain, kyc, kwargs = alice.chain, KYC, {}
    if case == "wrong_kyc":
        kyc = {"legal_name": "Alice", "id": "X124"}
    elif case == "no_kyc_at_register":
        chain = join(ledger, "nokyc", kyc=False).chain
    elif case == "signed_by_another_key":
        kwargs = {"signer": SigningKey.generate()}
    elif case == "seq_not_zero":
        kwargs = {"seq": alice.seq + 1}
    elif case == "pending_already":
        ask(ledger, alice.chain, SigningKey.generate())
    elif case == "key_owns_a_chain":
        new = join(ledger, "bob").key
    elif case == "to_the_current_key":
        new = alice.key
    elif case == "no_recovery_code":
        # a record that names only a person is guessed: the third outside attacker took a
        # chain knowing its address alone
        kyc = {"legal_name": "Carol"}
        chain = ledger.register(register_request(
            SigningKey.generate(), "carol", clock(), bank=BANK, kyc_record=kyc)).id
    elif case == "the_banks_own_chain":
        # its record is {"legal_name": <the bank>, "kind": "bank"}, found offline
        chain, kyc = ledger.bank_chain(), {"legal_name": BANK, "kind": "bank"}
    elif case == "sent_again_after_its_cancel":
        intent = sign_intent(new, "recover", chain, 0, clock(), {"owner": new.public_key})
        entry, _ = ledger.recover(chain, {**intent, "kyc_record": kyc})
        submit(ledger, alice, alice.intent("cancel_recovery", {"recovery": entry.id},
                                           time=clock()))
        clock.now += 1
        before = snapshot(ledger.store)
        with pytest.raises(TChainError) as again:
            ledger.recover(chain, {**intent, "kyc_record": kyc})
        assert again.value.code == code, again.value.message
        assert snapshot(ledger.store) == before
        return
    before = snapshot(ledger.store)
    with pytest.raises(TChainError) as refused:
        ask(ledger, chain, new, kyc, **kwargs)
    assert refused.value.code == code, refused.value.message
    assert snapshot(ledger.store) == before


def test_the_verifier_refuses_a_recovered_entry_before_the_delay(ledger, clock, alice):
    """A bank that hands a chain to a new key early signs what the owner's wallet refuses."""
    entry, after = ask(ledger, alice.chain, SigningKey.generate())
    with pytest.raises(TChainError, match="no earlier than its delay"):
        verify_with(ledger, alice.chain, after, time=clock.now + DELAY - 1, kind="recovered",
                    intent=None, effects=[], evidence=[entry.doc])


def test_a_recover_intent_sent_as_an_ordinary_intent_is_refused(ledger, clock, alice):
    new = SigningKey.generate()
    intent = sign_intent(new, "recover", alice.chain, 0, clock(), {"owner": new.public_key})
    with pytest.raises(TChainError) as refused:
        ledger.submit(intent)
    assert refused.value.code in ("bad_signature", "bad_request")


def test_once_its_time_comes_the_old_key_signs_nothing_before_the_tick(ledger, clock, alice):
    """The ``recovered`` entry is written by the clock's tick, a little after the time the
    recovery takes effect; meanwhile the old key's payments and its cancel are refused (the
    third outside attacker paid with the old key 10-137 ms after ``effective``)."""
    bob = join(ledger, "bob")
    entry, after = ask(ledger, alice.chain, SigningKey.generate())
    clock.now = after.recovery.at
    before = snapshot(ledger.store)
    for intent in (alice.payment(bob, "1"),
                   alice.intent("cancel_recovery", {"recovery": entry.id}, time=clock())):
        with pytest.raises(TChainError) as late:
            ledger.submit(intent)
        assert late.value.code == "forbidden", late.value.message
    assert snapshot(ledger.store) == before


def test_the_verifier_refuses_the_old_keys_entry_after_the_recovery_took_effect(
        ledger, clock, alice):
    """A bank that lets the old key spend past ``effective`` signs what wallets refuse."""
    bob = join(ledger, "bob")
    _, after = ask(ledger, alice.chain, SigningKey.generate())
    intent = alice.payment(bob, "1")
    with pytest.raises(TChainError, match="after its recovery took effect"):
        verify_with(ledger, alice.chain, after, time=after.recovery.at, kind="payment",
                    intent=intent, effects=[{"asset": USD, "balance": "-1", "held": "0"}],
                    evidence=[])


def test_the_verifier_refuses_a_recover_sent_again(ledger, clock, alice):
    """One recover intent, cancelled, then written again by a bank: a replay wallets refuse."""
    new = SigningKey.generate()
    intent = sign_intent(new, "recover", alice.chain, 0, clock(), {"owner": new.public_key})
    entry, _ = ledger.recover(alice.chain, {**intent, "kyc_record": KYC})
    after = submit(ledger, alice, alice.intent("cancel_recovery", {"recovery": entry.id},
                                               time=clock()))
    with ledger.store.read() as r:
        head = r.state(alice.chain)
    with pytest.raises(TChainError, match="a replay"):
        verify_with(ledger, alice.chain, head, time=clock.now + 1, kind="recover",
                    intent=intent, effects=[], evidence=[])
    assert after is not None


@pytest.mark.parametrize("code", ["K7Q2M4RZ3XW3N6PBT5VJC4HDL", "a" * 26, " " * 26, "0" * 26,
                                  "K7Q2-M4RZ-3XW3-N6PB-T5VJ-C4HD-LA", 12345])
def test_a_registration_with_a_recovery_code_not_of_the_wallets_shape_is_refused(ledger, clock,
                                                                                 code):
    """The fourth outside attacker registered with codes of 26 spaces, NULs or zeros and then
    recovered with them: a code must be base32, long enough for 128 bits."""
    before = snapshot(ledger.store)
    with pytest.raises(TChainError) as refused:
        ledger.register(register_request(SigningKey.generate(), "carol", clock(), bank=BANK,
                                         kyc_record={"legal_name": "Carol",
                                                     "recovery_code": code}))
    assert refused.value.code == "bad_request", refused.value.message
    assert snapshot(ledger.store) == before
