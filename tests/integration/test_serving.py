"""How `tchain validator serve` listens: one socket, connections taken by the workers in turn,
and never a port already taken."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time

import requests

from cli.local import LocalBank
from tests.realbanks import eventually, worker_pids

CONNECTIONS = 24


def _sockets(pid: int) -> set[str]:
    """The TCP sockets a process holds open, as ``socket:[inode]``. Its Unix sockets are
    left out: a worker that is still starting makes its event loop's socket pair after it is
    forked, and taken for a connection that one never closed."""
    tcp = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            tcp.update(f"socket:[{row.split()[9]}]" for row in rows)
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target in tcp:
            found.add(target)
    return found


def _listening(port: int) -> set[str]:
    """The sockets listening on 127.0.0.1:``port``, as ``socket:[inode]``."""
    found = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for row in table:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if local == f"0100007F:{port:04X}" and state == "0A":  # 0A: LISTEN
                found.add(f"socket:[{inode}]")
    return found


def _open(port: int, count: int, *, burst: bool = False) -> list[http.client.HTTPConnection]:
    """``count`` keep-alive connections, each with one request answered on it; ``burst``:
    all connected before the first request (as clients starting together do)."""
    connections = []
    for _ in range(count):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connections.append(c)
        if burst:
            c.connect()
        else:
            _ask(c)
    if burst:
        for c in connections:
            _ask(c)
    return connections


def _ask(c: http.client.HTTPConnection) -> None:
    c.request("GET", "/.well-known/tchain.json")
    response = c.getresponse()
    response.read()
    assert response.status == 200


def _both_serving(port: int, workers: list[int], before: dict[int, set[str]]) -> None:
    """Wait until both workers take connections (a worker still booting takes none, and the
    other takes them all meanwhile), then until they have closed those again."""
    held: list[http.client.HTTPConnection] = []
    deadline = time.monotonic() + 30
    while not all(_sockets(pid) - before[pid] for pid in workers):
        assert time.monotonic() < deadline, "a worker never took a connection"
        held += _open(port, 1)
        time.sleep(0.05)
    for c in held:
        c.close()
    eventually(lambda: all(not _sockets(pid) - before[pid] for pid in workers))


def test_workers_share_one_socket_and_take_keep_alive_connections_in_turn(tmp_path):
    """Connections are spread evenly over the workers, not left to chance: hashed over a
    socket per worker, 24 connections fall 12/12 in one run of six; on one shared socket
    without turns, whichever worker woke first could take them all."""
    with LocalBank(tmp_path / "bank", "bank1.example") as bank:
        workers = eventually(lambda: len(pids := worker_pids(bank)) == 2 and pids)
        listeners = [eventually(lambda pid=pid: _sockets(pid) & _listening(bank.port))
                     for pid in workers]
        assert listeners[0] == listeners[1] and len(listeners[0]) == 1, listeners
        before = {pid: _sockets(pid) for pid in workers}
        _both_serving(bank.port, workers, before)
        one_by_one = _open(bank.port, CONNECTIONS)
        accepted = {pid: len(_sockets(pid) - before[pid]) for pid in workers}
        burst = _open(bank.port, CONNECTIONS, burst=True)
        in_burst = {pid: len(_sockets(pid) - before[pid]) - accepted[pid] for pid in workers}
        for c in one_by_one + burst:
            c.close()
    assert sorted(accepted.values()) == [CONNECTIONS // 2] * 2, accepted
    assert abs(in_burst[workers[0]] - in_burst[workers[1]]) <= 2, in_burst


def test_a_worker_takes_its_turn_when_the_other_does_not_take_a_connection(tmp_path):
    """The lighter worker stopped (as if hung), the busier one still takes new connections,
    once they have waited its patience."""
    with LocalBank(tmp_path / "bank", "bank1.example") as bank:
        workers = eventually(lambda: len(pids := worker_pids(bank)) == 2 and pids)
        before = {pid: _sockets(pid) for pid in workers}
        _both_serving(bank.port, workers, before)
        connections = _open(bank.port, 2)  # one each
        try:
            assert all(len(_sockets(pid) - before[pid]) == 1 for pid in workers)
            stopped, running = workers
            os.kill(stopped, signal.SIGSTOP)
            try:
                connections += _open(bank.port, 3)  # 2-1, then 3-1 and 4-1 past its turn
                assert len(_sockets(running) - before[running]) == 4
            finally:
                os.kill(stopped, signal.SIGCONT)
        finally:
            for c in connections:
                c.close()


def test_serve_refuses_a_port_already_in_use_and_the_running_bank_keeps_it(tmp_path):
    """A second validator on a taken port exits 1 with one sentence, at once, and the first
    bank keeps it."""
    with LocalBank(tmp_path / "bank1", "bank1.example") as first:
        second = LocalBank(tmp_path / "bank2", "bank2.example")
        run = subprocess.run(
            [sys.executable, "-P", "-m", "cli", "validator", "serve", "--data", str(second.data),
             "--host", "127.0.0.1", "--port", str(first.port)],
            capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stderr
        assert f"127.0.0.1:{first.port} is already in use" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # one sentence only
        for _ in range(8):  # every answer still comes from the first bank
            r = requests.get(first.url + "/.well-known/tchain.json", timeout=10)
            assert r.json()["document"]["name"] == "bank1.example"
