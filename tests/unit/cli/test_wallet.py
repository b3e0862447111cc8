"""The wallet file, and the session's refusal of a rolled-back, frozen or spliced chain (fake
bank clients over a real in-process ledger and its key, like TUF's rollback, freeze and
mix-and-match tests; the integration tests use a real bank)."""

from __future__ import annotations

import json
import os

import pytest

from cli.errors import SecurityError, WalletError
from cli.session import Session
from cli.wallet import BankInfo, Wallet
from tchain.clock import now_ms
from tchain.model import SignedEntry
from tchain.status import sign_status
from tests.helpers import BANK, USD, join, submit


def test_key_is_sealed_and_unlocks_only_with_the_passphrase(tmp_path):
    wallet, key = Wallet.create(tmp_path / "w.json", "s3cret")
    raw = (tmp_path / "w.json").read_text()
    assert key.seed.hex() not in raw
    assert Wallet.load(tmp_path / "w.json").unlock("s3cret").public_key == key.public_key
    with pytest.raises(WalletError, match="wrong passphrase"):
        wallet.unlock("guess")


def test_an_existing_wallet_is_never_overwritten(tmp_path):
    Wallet.create(tmp_path / "w.json", "a")
    with pytest.raises(WalletError, match="refusing to overwrite"):
        Wallet.create(tmp_path / "w.json", "b")


def test_a_damaged_wallet_is_a_clean_error(tmp_path):
    (tmp_path / "w.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(WalletError, match="damaged"):
        Wallet.load(tmp_path / "w.json")


@pytest.mark.parametrize(("field", "value"), [
    ("pending", "x"), ("pending", {"public_key": "ab"}), ("bank", [1]), ("addresses", 3),
    ("sealed", None), (None, [1, 2]),
])
def test_a_field_of_the_wrong_shape_is_named_in_one_sentence(tmp_path, field, value):
    """Attack 22: a wallet whose ``pending`` was edited was refused with Python's words
    ("argument after ** must be a mapping"). It names the field instead."""
    Wallet.create(tmp_path / "w.json", "s3cret")
    raw = json.loads((tmp_path / "w.json").read_text())
    edited = value if field is None else {**raw, field: value}
    (tmp_path / "w.json").write_text(json.dumps(edited))
    with pytest.raises(WalletError) as refused:
        Wallet.load(tmp_path / "w.json")
    said = refused.value.message
    assert said.startswith(f"the wallet {tmp_path / 'w.json'} is damaged: ")
    assert "argument" not in said and "cli." not in said and "\n" not in said
    if field is not None:
        assert f"its {field} " in said, said


class FakeBank:
    """A bank client over an in-process ledger that serves what its subclass chooses. Status
    answers are signed by the real bank key and bound to a fresh request signature, as the
    real validator does."""

    def __init__(self, ledger) -> None:
        self.ledger = ledger
        self.captured = None

    def entries(self, chain, start, limit):
        with self.ledger.store.read() as r:
            return [json.loads(e) for e in r.entries(chain, start, limit)]

    def status(self, chain):
        with self.ledger.store.read() as r:
            state = r.state(chain)
        return {"chain": chain, "address": state.address, "height": state.height,
                "head": state.head, "seq": state.seq, "owner": state.owner,
                "balances": {a: b.to_dict() for a, b in state.balances.items()}}

    def chain(self, chain):
        request = os.urandom(64).hex()
        return sign_status(self.ledger.bank.key, self.status(chain), request=request,
                           now=0), request


class RolledBackBank(FakeBank):
    """Serves only the first ``keep`` entries of a chain, and reports that height."""

    def __init__(self, ledger, keep: int) -> None:
        super().__init__(ledger)
        self.keep = keep

    def entries(self, chain, start, limit):
        return super().entries(chain, start, min(limit, self.keep - start))

    def status(self, chain):
        with self.ledger.store.read() as r:
            head = json.loads(r.entries(chain, self.keep - 1, 1)[0])
        return {**super().status(chain), "height": self.keep - 1,
                "head": SignedEntry.from_dict(head).id, "balances": {}}


class FrozenBank(FakeBank):
    """Replays the status (validly signed by the bank) it captured from an earlier request,
    and serves no entry past that status: what a mirror or a man in the middle can do."""

    def __init__(self, ledger, old_answer) -> None:
        super().__init__(ledger)
        self.old_answer = old_answer

    def entries(self, chain, start, limit):
        return super().entries(chain, start, min(limit, self.old_answer["height"] + 1 - start))

    def chain(self, chain):
        return self.old_answer, os.urandom(64).hex()


class SplicedBank(FakeBank):
    """Serves the chain with one entry taken from another customer's chain (mix and match)."""

    def __init__(self, ledger, other_chain: str, height: int) -> None:
        super().__init__(ledger)
        self.other_chain, self.height = other_chain, height

    def entries(self, chain, start, limit):
        page = super().entries(chain, start, limit)
        foreign = super().entries(self.other_chain, self.height, 1)
        return [foreign[0] if SignedEntry.from_dict(e).height == self.height else e
                for e in page]


def session_for(tmp_path, ledger, customer, held: int, bank) -> tuple[Session, Wallet]:
    """A wallet of ``customer`` holding its first ``held`` entries, talking to ``bank``."""
    wallet, _ = Wallet.create(tmp_path / "w.json", "p", force=True)
    wallet = wallet.registered(name=customer.name, chain=customer.chain,
                               address=f"{customer.name}*{BANK}",
                               bank=BankInfo(BANK, "http://127.0.0.1:9",
                                             ledger.bank.public_key, ""))
    with ledger.store.read() as r:
        wallet.append_entries(r.entries(customer.chain, 0, held))
    session = Session(wallet, customer.key)
    session._client = lambda: (customer.chain, wallet.bank, bank)
    return session, wallet


@pytest.fixture
def paid(ledger):
    """alice (3 entries: genesis, deposit, payment) and bob, at one bank."""
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 100)
    submit(ledger, alice, alice.payment(bob, "30"))
    return alice, bob


def test_the_honest_fake_bank_is_accepted(tmp_path, ledger, paid):
    alice, _ = paid
    session, wallet = session_for(tmp_path, ledger, alice, 1, FakeBank(ledger))
    assert session.sync().new_entries == 2
    assert len(wallet.local_entries()) == 3


def test_wallet_refuses_a_rolled_back_chain(tmp_path, ledger, paid):
    alice, _ = paid
    session, wallet = session_for(tmp_path, ledger, alice, 3, RolledBackBank(ledger, keep=2))
    with pytest.raises(SecurityError, match="rolled-back"):
        session.sync()
    assert len(wallet.local_entries()) == 3


def test_wallet_refuses_a_frozen_chain_status(tmp_path, ledger, paid):
    alice, bob = paid
    old_answer, _ = FakeBank(ledger).chain(alice.chain)  # a genuine answer, captured early
    submit(ledger, alice, alice.payment(bob, "5"))
    session, wallet = session_for(tmp_path, ledger, alice, 3, FrozenBank(ledger, old_answer))
    before = wallet.chain_file.read_bytes()
    with pytest.raises(SecurityError, match="freeze"):
        session.sync()
    assert wallet.chain_file.read_bytes() == before


def test_wallet_refuses_a_spliced_chain(tmp_path, ledger, paid):
    alice, bob = paid
    session, wallet = session_for(tmp_path, ledger, alice, 1,
                                  SplicedBank(ledger, bob.chain, height=1))
    with pytest.raises(SecurityError, match="does not verify"):
        session.sync()
    assert len(wallet.local_entries()) == 1


def test_a_crash_before_the_rename_leaves_the_copy_whole(tmp_path, ledger, paid, monkeypatch):
    """The copy is written whole to a temporary file and renamed over the old one: a crash
    before the rename leaves the old copy as it was, not half a line longer."""
    alice, _ = paid
    _, wallet = session_for(tmp_path, ledger, alice, 2, FakeBank(ledger))
    before = wallet.chain_file.read_bytes()
    with ledger.store.read() as r:
        third = r.entries(alice.chain, 2, 1)

    def crash(*_args):
        raise OSError("the machine stopped here")

    monkeypatch.setattr("cli.atomic.os.replace", crash)
    with pytest.raises(OSError):
        wallet.append_entries(third)
    assert wallet.chain_file.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


class GrowingBank(FakeBank):
    """An honest bank at which bob pays alice while her wallet reads her chain: after it has
    served her entries and before it answers her status (what any incoming credit can do)."""

    def __init__(self, ledger, payer, payee) -> None:
        super().__init__(ledger)
        self.payer, self.payee = payer, payee

    def chain(self, chain):
        if self.payer is not None:
            submit(self.ledger, self.payer, self.payer.payment(self.payee, "1"))
            self.payer = None
        return super().chain(chain)


def test_a_credit_arriving_while_the_wallet_syncs_is_no_alarm(tmp_path, ledger, paid):
    alice, bob = paid
    session, wallet = session_for(tmp_path, ledger, alice, 3, GrowingBank(ledger, bob, alice))
    report = session.sync()
    assert report.new_entries == 1 and report.state.height == 3
    assert len(wallet.local_entries()) == 4


class CreditFirstBank(FakeBank):
    """An honest bank at which bob pays alice just before her own intent arrives."""

    def __init__(self, ledger, payer, payee) -> None:
        super().__init__(ledger)
        self.payer, self.payee = payer, payee

    def submit(self, doc):
        submit(self.ledger, self.payer,
               self.payer.payment(self.payee, "1", time=self.ledger.clock()))
        return {"entries": [e.doc for e in self.ledger.submit(doc).entries]}


def test_a_credit_arriving_before_our_intent_is_no_alarm(tmp_path, ledger, paid, clock):
    alice, bob = paid
    clock.now = now_ms()  # the wallet signs with the real time
    session, wallet = session_for(tmp_path, ledger, alice, 3, CreditFirstBank(ledger, bob,
                                                                               alice))
    done = session._submit("payment", {"to": bob.chain, "to_validator": BANK, "asset": USD,
                                       "amount": "2"})
    assert done.entries[0].height == 4
    assert [SignedEntry.from_bytes(e).height for e in wallet.local_entries()] == [0, 1, 2, 3, 4]


class AheadBank(FakeBank):
    """Reports, validly signed, a height one past the entries it serves."""

    def status(self, chain):
        return {**super().status(chain), "height": super().status(chain)["height"] + 1}


def test_a_status_ahead_of_every_entry_served_is_refused(tmp_path, ledger, paid):
    """Entries that come while the wallet reads are fetched; a height the bank never serves
    is its fault, not a chain still growing."""
    alice, _ = paid
    session, wallet = session_for(tmp_path, ledger, alice, 3, AheadBank(ledger))
    before = wallet.chain_file.read_bytes()
    with pytest.raises(SecurityError, match="serves your chain only up to height 2"):
        session.sync()
    assert wallet.chain_file.read_bytes() == before
