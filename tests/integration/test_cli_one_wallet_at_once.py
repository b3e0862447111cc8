"""One wallet used by several ``tchain`` commands at once, and a copy of the chain that was
damaged or lost: commands take turns, nothing is written twice, a broken copy is said to be
broken and rebuilt from the bank only when asked (never over an equivocation proof)."""

from __future__ import annotations

import fcntl
import json
import os

import pytest

from tchain.model import SignedEntry
from tests.helpers import BANK, USD
from tests.realwallets import customer, ok, run, start


@pytest.fixture(scope="module")
def people(bank, tmp_path_factory):
    base = tmp_path_factory.mktemp("at-once")
    return {"bob": customer(base, "bob", bank), "alice": customer(base, "alice", bank, "10000")}


def copy_of(wallet):
    return wallet.with_name(wallet.name + ".chain")


def balances(wallet):
    return json.loads(ok("balance", "--json", wallet=wallet).stdout)["balances"]


def test_eight_commands_at_once_on_one_wallet(people):
    alice, bob = people["alice"], people["bob"]
    before = int(balances(alice)[USD]["balance"])
    commands = [["pay", f"bob*{BANK}", str(amount), USD] for amount in (1, 2, 3, 4, 5)]
    commands += [["balance"], ["sync"], ["history"]]
    # The bound is far above what eight commands take: this test is about turns, not time.
    running = [start(args, alice, env={"TCHAIN_LOCK_WAIT": "600"}) for args in commands]
    results = [(args, p.wait(timeout=600), p.stderr.read()) for args, p in
               zip(commands, running, strict=True)]
    for p in running:
        p.stdout.close()
        p.stderr.close()
    assert [(args, rc, err) for args, rc, err in results if rc != 0] == []
    verified = json.loads(ok("verify", "--json", wallet=alice).stdout)
    lines = copy_of(alice).read_bytes().splitlines()
    assert [SignedEntry.from_bytes(line).height for line in lines] == \
        list(range(verified["height"] + 1))
    assert int(balances(alice)[USD]["balance"]) == before - 15
    assert int(balances(bob)[USD]["balance"]) >= 15


def test_a_wallet_held_too_long_is_said_in_one_sentence(people):
    alice = people["alice"]
    lock = alice.with_name(alice.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        refused = run("balance", wallet=alice, env={"TCHAIN_LOCK_WAIT": "0"})
    finally:
        os.close(fd)
    assert refused.exit_code == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: another tchain command is using the wallet {alice}")
    ok("balance", wallet=alice)


def duplicate_last_entry(wallet) -> bytes:
    """What two commands appending at once did: the last entry twice."""
    before = copy_of(wallet).read_bytes()
    copy_of(wallet).write_bytes(before + before.splitlines(keepends=True)[-1])
    return before


@pytest.mark.parametrize("command", [["balance"], ["sync"], ["verify"], ["history"],
                                     ["pay", f"bob*{BANK}", "1", USD]])
def test_a_damaged_copy_is_said_to_be_and_how_to_mend_it(people, command):
    alice = people["alice"]
    before = duplicate_last_entry(alice)
    try:
        refused = run(*command, wallet=alice)
        assert refused.exit_code == 1
        [line] = refused.stderr.splitlines()
        assert "does not verify" in line and "tchain sync --rebuild" in line
    finally:
        copy_of(alice).write_bytes(before)


def test_export_refuses_a_copy_that_does_not_verify(people, tmp_path):
    alice = people["alice"]
    before = duplicate_last_entry(alice)
    try:
        refused = run("export", str(tmp_path / "backup.jsonl"), wallet=alice)
        assert refused.exit_code == 1 and "does not verify" in refused.stderr
        assert not (tmp_path / "backup.jsonl").exists()
    finally:
        copy_of(alice).write_bytes(before)


def test_sync_rebuild_mends_a_damaged_copy_from_the_genesis(people):
    alice = people["alice"]
    good = duplicate_last_entry(alice)
    rebuilt = ok("sync", "--rebuild", wallet=alice).stdout
    assert "verified from the genesis" in rebuilt and "old copy" in rebuilt
    assert copy_of(alice).read_bytes() == good
    kept = [p for p in alice.parent.iterdir() if p.name.startswith(copy_of(alice).name + ".")]
    assert any(p.read_bytes() == good + good.splitlines(keepends=True)[-1] for p in kept)
    ok("balance", wallet=alice)


def test_sync_rebuild_mends_a_lost_copy(people):
    alice = people["alice"]
    good = copy_of(alice).read_bytes()
    copy_of(alice).unlink()
    refused = run("balance", wallet=alice)
    assert refused.exit_code == 1
    assert "missing" in refused.stderr and "tchain sync --rebuild" in refused.stderr
    ok("sync", "--rebuild", wallet=alice)
    assert copy_of(alice).read_bytes() == good


def test_sync_rebuild_never_goes_over_an_equivocation_proof(bank, people):
    """The copy holds an entry the bank signed and no longer serves: the rebuild writes the
    proof and stops; once a proof is there, no rebuild is done at all."""
    alice = people["alice"]
    good = copy_of(alice).read_bytes()
    lines = good.splitlines()
    forged = json.loads(lines[-1])
    forged["entry"]["time"] += 7
    forged["sig"] = bank.config.signing_key().sign("entry", forged["entry"])
    from tchain.encoding import canonical
    copy_of(alice).write_bytes(b"\n".join([*lines[:-1], canonical(forged)]) + b"\n")
    try:
        refused = run("sync", "--rebuild", wallet=alice)
        assert refused.exit_code == 1 and "SECURITY" in refused.stderr
        [proof] = alice.parent.glob("equivocation-*.json")
        assert ok("proof", "verify", str(proof)).stdout.startswith("valid equivocation proof")
        copy_of(alice).write_bytes(good)
        again = run("sync", "--rebuild", wallet=alice)
        assert again.exit_code == 1 and str(proof) in again.stderr
        assert copy_of(alice).read_bytes() == good
    finally:
        copy_of(alice).write_bytes(good)
        for proof in alice.parent.glob("equivocation-*.json"):
            proof.unlink()
