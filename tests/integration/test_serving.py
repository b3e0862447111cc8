"""How `tchain validator serve` listens: a socket per worker, and never a port already taken."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys

import requests

from cli.local import LocalBank
from tests.realbanks import eventually, worker_pids

CONNECTIONS = 16


def _sockets(pid: int) -> set[str]:
    """The sockets a process holds open, as ``socket:[inode]``."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:"):
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


def test_each_worker_listens_on_a_socket_of_its_own_and_connections_spread(tmp_path):
    """Each worker listens on its own SO_REUSEPORT socket, so the kernel hands new connections
    to both workers. On one shared socket, whichever worker woke first could take every
    connection (and keep-alive clients stay where they landed). With 16 connections, all on
    one worker would happen by chance once in 30,000 runs."""
    with LocalBank(tmp_path / "bank", "bank1.example") as bank:
        workers = eventually(lambda: len(pids := worker_pids(bank)) == 2 and pids)
        listeners = [eventually(lambda pid=pid: _sockets(pid) & _listening(bank.port))
                     for pid in workers]
        assert all(len(mine) == 1 for mine in listeners), listeners
        assert listeners[0] != listeners[1]
        before = {pid: _sockets(pid) for pid in workers}
        connections = [http.client.HTTPConnection("127.0.0.1", bank.port, timeout=10)
                       for _ in range(CONNECTIONS)]
        try:
            for c in connections:  # one request each, answered on a connection kept alive
                c.request("GET", "/.well-known/tchain.json")
                response = c.getresponse()
                response.read()
                assert response.status == 200
            accepted = {pid: len(_sockets(pid) - before[pid]) for pid in workers}
        finally:
            for c in connections:
                c.close()
    assert sum(accepted.values()) == CONNECTIONS, accepted
    assert all(n > 0 for n in accepted.values()), accepted


def test_serve_refuses_a_port_already_in_use_and_the_running_bank_keeps_it(tmp_path):
    """A second validator on a taken port exits 1 with one sentence. Without the check, its
    workers' SO_REUSEPORT sockets would join the first bank's and take half its clients."""
    with LocalBank(tmp_path / "bank1", "bank1.example") as first:
        second = LocalBank(tmp_path / "bank2", "bank2.example")
        run = subprocess.run(
            [sys.executable, "-m", "cli", "validator", "serve", "--data", str(second.data),
             "--host", "127.0.0.1", "--port", str(first.port)],
            capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stderr
        assert f"127.0.0.1:{first.port} is already in use" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # one sentence only
        for _ in range(8):  # every answer still comes from the first bank
            r = requests.get(first.url + "/.well-known/tchain.json", timeout=10)
            assert r.json()["document"]["name"] == "bank1.example"
