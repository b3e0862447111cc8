"""The LMDB store: durability rules that hold whatever the caller does."""

from __future__ import annotations

import gc
import multiprocessing
import subprocess
import sys
import threading
import time

import lmdb
import pytest

from tchain.encoding import canonical, parse
from tchain.errors import StoreError, StoreFullError
from tchain.model import Terms
from tchain.state import ChainState, Hold, HoldsNotLoadedError
from tchain.values import UAI
from tests.helpers import BANK, USD, join, new_ledger, snapshot, submit
from validator.store import RateBuckets, Reader, Store


def test_store_refuses_a_second_entry_at_a_height(ledger):
    alice = join(ledger, "alice")
    before = snapshot(ledger.store)
    with pytest.raises(StoreError, match="already holds an entry at height 0"):
        ledger.store.write(lambda w: w.put_entry(alice.chain, 0, b"{}"))
    assert snapshot(ledger.store) == before


def test_a_failed_write_leaves_nothing(ledger):
    alice = join(ledger, "alice")
    before = snapshot(ledger.store)

    def half_then_fail(w):
        w.put_entry(alice.chain, 1, b"{}")
        raise RuntimeError("crash in the middle of a write")

    with pytest.raises(RuntimeError):
        ledger.store.write(half_then_fail)
    assert snapshot(ledger.store) == before


def test_the_map_grows_instead_of_failing(tmp_path):
    ledger = new_ledger(tmp_path / "l", map_size=64 * 1024)
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 10**6)
    for _ in range(150):
        submit(ledger, alice, alice.payment(bob, "1"))
    assert ledger.state(bob.chain).balances[USD].balance == 150
    assert ledger.store._open().info()["map_size"] > 64 * 1024


def test_a_full_store_refuses_and_changes_nothing(tmp_path):
    ledger = new_ledger(tmp_path / "l", map_size=256 * 1024, max_map_size=256 * 1024)
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 10**6)
    with pytest.raises(StoreFullError) as info:
        for _ in range(1000):
            before = snapshot(ledger.store)
            submit(ledger, alice, alice.payment(bob, "1"))
    assert info.value.status == 503
    assert snapshot(ledger.store) == before
    # Reads still work when the store is full.
    assert ledger.state(alice.chain).seq == alice.seq


def _count_entries(path, chain, queue):
    store = Store(path)  # opened in the child process
    with store.read() as r:
        queue.put(len(r.entries(chain, 0, 1000)))


def test_another_process_sees_committed_entries(ledger):
    """A second process (as a worker of `serve` is) opens the same environment and reads."""
    alice, bob = join(ledger, "alice"), join(ledger, "bob")
    ledger.deposit(f"alice*{BANK}", USD, 10)
    submit(ledger, alice, alice.payment(bob, "3"))
    queue: multiprocessing.Queue[int] = multiprocessing.get_context("spawn").Queue()
    child = multiprocessing.get_context("spawn").Process(
        target=_count_entries, args=(ledger.store.path, alice.chain, queue))
    child.start()
    child.join(10)
    assert queue.get(timeout=5) == 3


def test_group_commit_answers_every_writer_across_map_resizes(tmp_path):
    """Eight threads write at once into a map that must double several times while other
    threads hold reads open (a resize waits for them, and new reads wait for it): every
    writer gets its own work's result, and every write is in the store."""
    store = Store(tmp_path / "s", map_size=64 * 1024)
    results: dict[int, object] = {}
    stop = threading.Event()

    def writer(i: int) -> None:
        for j in range(40):
            key = i * 1000 + j
            results[key] = store.write(lambda w, k=key: (w.put_meta(f"k{k}", "x" * 2000), k)[1])

    def reader() -> None:
        while not stop.is_set():
            with store.read() as r:
                r.meta("k0")
                time.sleep(0.001)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert results == {k: k for k in results} and len(results) == 8 * 40
    with store.read() as r:
        assert all(r.meta(f"k{k}") == "x" * 2000 for k in results)
    store.close()


def test_a_read_does_not_wait_for_a_commit_in_progress(tmp_path):
    """Reads begin while another thread is inside a write (and its fsync): they see the last
    commit, and the write's changes once it has committed."""
    store = Store(tmp_path / "s")
    store.write(lambda w: w.put_meta("k", "before"))
    inside, release = threading.Event(), threading.Event()

    def slow(w):
        w.put_meta("k", "after")
        inside.set()
        assert release.wait(30)

    writer = threading.Thread(target=store.write, args=(slow,))
    writer.start()
    assert inside.wait(30)
    seen: list[str | None] = []

    def read() -> None:
        with store.read() as r:
            seen.append(r.meta("k"))

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(30)
    finished_while_writing = not reader.is_alive()
    release.set()
    writer.join(30)
    reader.join(30)
    assert finished_while_writing and seen == ["before"]
    with store.read() as r:
        assert r.meta("k") == "after"
    store.close()


def _grow_from_child(path, size):
    store = Store(path)  # opened in the child process, which grows the map
    for i in range(size // 2000):
        store.write(lambda w, i=i: w.put_meta(f"c{i}", "y" * 2000))
    store.close()


def test_a_map_grown_by_another_process_is_adopted_once_no_read_is_open(tmp_path):
    """Another process (a second worker of `serve`) grows the map past this one's mapping: the
    next transaction here adopts the new size, and waits to do it until this process's other
    open read has ended (remapping under an open transaction would pull its pages away)."""
    store = Store(tmp_path / "s", map_size=64 * 1024)
    store.write(lambda w: w.put_meta("k", "mine"))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.read() as r:
            assert r.meta("k") == "mine"
            holding.set()
            assert release.wait(30)
            assert r.meta("k") == "mine"  # its snapshot is still readable

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    child = multiprocessing.get_context("spawn").Process(
        target=_grow_from_child, args=(store.path, 1 << 20))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    seen: list[str | None] = []

    def read() -> None:
        with store.read() as r:
            seen.append(r.meta(f"c{(1 << 20) // 2000 - 1}"))

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(1)
    waited = reader.is_alive()
    release.set()
    holder.join(30)
    reader.join(30)
    assert waited and seen == ["y" * 2000]
    store.close()


_FIRST_TAKES = """
import sys, tempfile, threading
from validator.store import RateBuckets
for trial in range(40):
    buckets = RateBuckets(tempfile.mkdtemp(dir=sys.argv[1]) + "/limits")
    barrier = threading.Barrier(8)
    waits = []
    def take():
        barrier.wait()
        waits.append(buckets.take("alice", 1000, 0.001, 8))
    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(sorted(waits), buckets.take("alice", 1000, 0.001, 8) > 0)
"""


def test_threads_that_open_the_rate_buckets_together_share_one_environment(tmp_path):
    # Two opens of one LMDB environment in a process hung or freed memory twice (a
    # worker's first requests, on its threads); run in a child so a crash fails only this test.
    run = subprocess.run([sys.executable, "-c", _FIRST_TAKES, str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    # In every trial the eight takes all counted: each got a token, and the burst is spent.
    assert run.stdout.splitlines() == ["[0, 0, 0, 0, 0, 0, 0, 0] True"] * 40


def test_due_finds_the_records_whose_time_has_come_earliest_first_and_no_others(tmp_path):
    store = Store(tmp_path / "s")

    def put(w):
        for i in range(300):
            w.put_record("flows", f"{i:064x}", {"i": i},
                         timers=[("flows", 1_000 + (i * 7919) % 300)])
        w.put_record("offers", "ff" * 32, {"state": "closed", "sell": "a:X", "buy": "b:Y"},
                     timers=[("offers", 0)])  # another timer
        w.put_record("flows", "ee" * 32, {"i": 2})  # no time: never due

    store.write(put)
    with store.read() as r:
        due = r.due("flows", 1_099)
    assert [at for _, at in due] == list(range(1_000, 1_100))
    assert {int(record_id, 16) for record_id, _ in due} == \
        {i for i in range(300) if (i * 7919) % 300 < 100}
    store.write(lambda w: [w.clear_due("flows", record_id, at) for record_id, at in due])
    with store.read() as r:
        assert [at for _, at in r.due("flows", 10**6)] == list(range(1_100, 1_300))
        assert r.due("offers", 0) == [("ff" * 32, 0)]
    store.close()


class _GrowingElsewhere:
    """An environment whose map other processes keep growing: the first begins find it
    resized (MDB_MAP_RESIZED) again after each adoption."""

    def __init__(self, env, resized: int) -> None:
        self.env, self.resized, self.adopted = env, resized, 0

    def begin(self, **kw):
        if self.resized:
            self.resized -= 1
            raise lmdb.MapResizedError("mdb_txn_begin: MDB_MAP_RESIZED")
        return self.env.begin(**kw)

    def set_mapsize(self, size: int) -> None:
        assert size == 0  # adopt the size the other process set
        self.adopted += 1


def test_a_begin_adopts_the_map_size_as_often_as_other_processes_grow_it(tmp_path):
    # Seen under bench load on a new store: a second MDB_MAP_RESIZED right after adopting.
    store = Store(tmp_path / "s")
    store.write(lambda w: w.put_meta("k", "v"))
    growing = _GrowingElsewhere(store._open(), resized=3)
    with store._lock:
        txn = store._begin(growing, write=False)
    try:
        assert growing.adopted == 3 and Reader(txn, store._dbs).meta("k") == "v"
    finally:
        txn.abort()
    store.close()


def _old_format(path, ledger, chain, holds):
    """Rewrite ``chain``'s state as stores before the holds database kept it (its holds
    inside), and forget that they were moved out."""
    state = ledger.state(chain)
    old = canonical({**state.to_dict(), "holds": {k: h.to_dict() for k, h in holds.items()}})
    ledger.store.write(lambda w: w.put_state(state, old))
    ledger.store.close()
    env = lmdb.open(str(path), max_dbs=32)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        assert txn.delete(b"holds_apart", db=meta)
    env.close()
    return old


def test_a_store_of_the_old_format_has_its_holds_moved_apart_once(tmp_path):
    ledger = new_ledger(tmp_path)
    alice = join(ledger, "alice")
    holds = {"ab" * 32: Hold("offer", 1, USD, 200, Terms(UAI.parse(USD), 7)),
             "cd" * 32: Hold("payment", 2, USD, 100)}
    old = _old_format(tmp_path, ledger, alice.chain, holds)
    store = Store(tmp_path)
    try:
        with store.read() as r:
            raw = r.state_bytes(alice.chain)
            assert raw == canonical({k: v for k, v in parse(old).items() if k != "holds"})
            assert dict(r.state_with_holds(alice.chain).holds) == holds
            assert r.state_with_holds(alice.chain).holds.get("ef" * 32) is None
        store.close()
        store = Store(tmp_path)  # moved once: a second open changes nothing
        before = snapshot(store)
        store.close()
        store = Store(tmp_path)
        assert snapshot(store) == before
    finally:
        store.close()


def test_a_state_refuses_to_guess_about_holds_it_was_not_loaded_with(ledger):
    # A decision gets its chain's state with the one hold it closes loaded (Reader.state):
    # a lookup of any other is our bug, refused rather than answered "none open", which
    # could release value twice.
    alice = join(ledger, "alice")
    with ledger.store.read() as r:
        state = r.state(alice.chain)
        assert not r.holds(alice.chain)
        raw = r.state_bytes(alice.chain)
        loaded = r.state(alice.chain, ["ab" * 32])
    assert loaded.holds.get("ab" * 32) is None  # looked up for it: known not open
    with pytest.raises(HoldsNotLoadedError, match="not loaded"):
        state.holds.get("ab" * 32)
    # decoded from its bytes alone, a state refuses to guess that nothing is held
    with pytest.raises(HoldsNotLoadedError, match="not loaded"):
        ChainState.from_bytes(raw).holds.get("ab" * 32)
    assert dict(ledger.state(alice.chain).holds) == {}  # the ledger's copy is complete


def test_a_read_whose_objects_outlive_it_holds_no_reader_slot(ledger):
    """A refused request's error keeps its traceback, its frames and the chain state they
    read, and the state's holds keep the Reader: if the Reader kept its LMDB transaction,
    every such request held a reader slot until the garbage collector ran, and 256 of them
    stopped the bank (MDB_READERS_FULL)."""
    alice = join(ledger, "alice")
    kept = []
    gc.disable()
    try:
        for _ in range(400):  # more than LMDB's 256 reader slots
            with ledger.store.read() as r:
                state = r.state(alice.chain)
                kept.append(state)
                kept.append(kept)  # a cycle: only the collector would free it
        assert ledger.store.reader_slots() <= 1
        with pytest.raises(HoldsNotLoadedError, match="holds listed"):
            dict(kept[0].holds)  # what it was not loaded with it never reads later
    finally:
        gc.enable()


def test_rate_buckets_never_fill_whatever_the_keys(tmp_path, monkeypatch):
    """Found by the outside attacker: 75,000 fresh keys filled the budgets' map, and from then
    on most new keys' requests failed (500). Past a cap, idle buckets go; if none is idle, new
    keys share one overflow bucket; a full map is served, not failed."""
    monkeypatch.setattr(RateBuckets, "CAPACITY", 50)
    buckets = RateBuckets(tmp_path / "limits")
    for i in range(50):  # 50 keys, each with its budget all but spent: none idle
        for _ in range(3):
            buckets.take(f"busy{i}", 1_000, rate=1, burst=3)
    assert buckets.take("new-a", 1_000, rate=1, burst=3) == 0  # into the overflow bucket
    assert buckets.take("new-b", 1_000, rate=1, burst=3) == 0
    assert buckets.take("new-c", 1_000, rate=1, burst=3) == 0
    assert buckets.take("new-d", 1_000, rate=1, burst=3) > 0   # the overflow's budget, shared
    # ten seconds on, the busy buckets are full again: idle, they go, and new keys get their own
    assert buckets.take("new-e", 11_000, rate=1, burst=3) == 0
    assert buckets.take("busy0", 11_000, rate=1, burst=3) == 0
