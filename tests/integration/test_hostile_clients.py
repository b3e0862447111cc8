"""Clients that attack the HTTP layer itself, against a real validator on loopback.

Slow clients that trickle a head to hold the server's workers, bodies past the limit (chunked
or not), a body framed twice, a request line or headers past any size, requests that never
finish: each is answered with the JSON of PROTOCOL.md §6 (or the connection closed) and costs
the bank nothing it keeps. The last test counts what the server holds (threads, descriptors,
connections) and checks it came back to what it held before the attacks.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from cli.local import LocalBank
from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tests import rawhttp
from tests.helpers import BANK, USD
from tests.realbanks import eventually, pay, read, register, snapshot_from
from validator.app import MAX_BODY
from validator.operator import deposit

# The bank here waits less than the defaults (10 s, 20 s, 5 s) before it cuts a client off,
# so that the tests that wait it out take seconds, not half a minute: the same code, set.
HEAD_TIMEOUT, BODY_TIMEOUT, KEEPALIVE = 3.0, 5.0, 2.0
SLOW_CLIENTS = 200
TRICKLE_FOR = HEAD_TIMEOUT + 3  # s: past the head timeout, so the slow ones are cut and come back
TRICKLE_EVERY = 1.2  # s between two header lines of a slow client
ANSWER_WITHIN = 1.0  # s: what a normal client waits at most while the slow ones trickle


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBank]:
    """A real validator (2 workers, LMDB) on 127.0.0.1 with the short timeouts above (the
    serve settings), stopped after the module."""
    base: Path = tmp_path_factory.mktemp("bank")
    with LocalBank(base / "bank1", BANK, workers=2, extra_args=(
            "--head-timeout", str(HEAD_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
            "--keepalive", str(KEEPALIVE))) as running:
        yield running


def _processes(bank: LocalBank) -> list[int]:
    """The bank's processes: the master and its children (workers, outbox sender)."""
    assert bank.process is not None
    pid = bank.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def _held(bank: LocalBank) -> dict[int, tuple[int, int]]:
    """Threads and open descriptors (connections among them) of each of the bank's
    processes."""
    return {pid: (len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd")))
            for pid in _processes(bank)}


def _connections(port: int) -> list[str]:
    """The states of the server's ends of TCP connections to ``port`` that a process holds
    (a closed one the kernel finishes alone has no inode)."""
    with open("/proc/net/tcp") as table:
        next(table)
        rows = [row.split() for row in table]
    return [row[3] for row in rows
            if row[1].endswith(f":{port:04X}") and row[3] != "0A" and row[9] != "0"]


def _quiet(bank: LocalBank) -> dict[int, tuple[int, int]]:
    """What the bank holds once no connection to it is left."""

    def no_connection() -> None:
        left = _connections(bank.port)
        assert not left, f"connections in states {left} (hex, as in /proc/net/tcp)"

    eventually(no_connection, timeout=30)
    return _held(bank)


@pytest.fixture(scope="module")
def baseline(bank: LocalBank) -> dict[int, tuple[int, int]]:
    """What the bank holds once each worker has served a store read and a signed request
    (its store and its rate limiter opened), on keep-alive connections since closed."""
    alice = register(bank, "warm")
    connections = [requests.Session() for _ in range(4)]  # taken in turn: two a worker
    for session in connections:
        assert session.get(bank.url + "/.well-known/tchain.json", timeout=10).ok
    for session in connections:
        path = f"/v1/chains/{alice.chain}"
        r = session.get(bank.url + path, timeout=10, headers={
            "Authorization": authorization_header(alice.key, "GET", path, "", b"", now_ms(),
                                                  bank=bank.name)})
        assert r.status_code == 200, r.text
        session.get(bank.url + "/health", timeout=10)
    for session in connections:
        session.close()
    return _quiet(bank)


def _assert_json_error(answer: rawhttp.Answer, status: int, code: str) -> None:
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers.get("content-type") == "application/json", answer.headers
    body = answer.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body


class _SlowClient:
    """A connection that sends a request line, then one header line every few seconds,
    never ending its head; reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = self._open()

    def _open(self) -> Any:
        sock = rawhttp.connect(self.port)
        sock.sendall(b"GET /.well-known/tchain.json HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        return sock

    def trickle(self) -> None:
        if not rawhttp.send_all(self.sock, b"X-Slow: 1\r\n"):
            self.sock.close()
            self.sock = self._open()


def test_slow_clients_cost_no_worker(bank, baseline):
    """200 connections trickling their heads past the head timeout take no worker from a
    normal client: each of its requests, on a new connection, is answered within 1 s."""
    slow = [_SlowClient(bank.port) for _ in range(SLOW_CLIENTS)]
    waits: list[float] = []
    try:
        end = time.monotonic() + TRICKLE_FOR
        next_line = time.monotonic() + TRICKLE_EVERY
        while time.monotonic() < end:
            start = time.monotonic()
            try:
                r = requests.get(bank.url + "/.well-known/tchain.json", timeout=5)
                assert r.status_code == 200, r.text
                waits.append(time.monotonic() - start)
            except requests.RequestException:
                waits.append(float("inf"))
            if time.monotonic() >= next_line:
                for client in slow:
                    client.trickle()
                next_line += TRICKLE_EVERY
            time.sleep(0.2)
    finally:
        for client in slow:
            client.sock.close()
    assert len(waits) > 20
    assert max(waits) < ANSWER_WITHIN, f"slowest answer {max(waits):.2f} s of {len(waits)}"


def test_a_chunked_body_past_the_limit_is_refused_whole(bank, baseline):
    """A chunked body whose first MiB is a valid signed intent and whose rest is garbage: 413,
    and nothing is applied (the intent, sent alone afterwards, is accepted)."""
    alice, bob = register(bank, "alice-chunked"), register(bank, "bob-chunked")
    deposit(bank.config, alice.name, "1000", "USD")
    doc = canonical(alice.payment(bob, "10", time=now_ms()))
    body = doc + b" " * (MAX_BODY - len(doc)) + b"garbage" * 50_000
    before = read(bank, snapshot_from)
    with rawhttp.connect(bank.port) as sock:
        rawhttp.send_all(sock, rawhttp.head("POST", "/v1/intents",
                                            "Content-Type: application/json",
                                            "Transfer-Encoding: chunked"))
        rawhttp.send_all(sock, rawhttp.chunked(body))
        answer = rawhttp.read_answer(sock)
    _assert_json_error(answer, 413, "too_large")
    assert answer.closed
    assert read(bank, snapshot_from) == before
    assert pay(bank, alice, bob, BANK, 10, USD).status_code == 201  # seq 1 still unused


def test_a_body_announced_past_the_limit_is_refused_before_it_is_read(bank, baseline):
    request = rawhttp.head("POST", "/v1/intents", "Content-Type: application/json",
                           f"Content-Length: {MAX_BODY + 1}")
    with rawhttp.connect(bank.port) as sock:
        rawhttp.send_all(sock, request)  # and no body: the answer must not wait for it
        answer = rawhttp.read_answer(sock)
    _assert_json_error(answer, 413, "too_large")
    assert answer.closed


def test_content_length_with_transfer_encoding_is_refused(bank, baseline):
    """A body framed twice is how requests are smuggled past a proxy: refused, not guessed."""
    request = rawhttp.head("POST", "/v1/intents", "Content-Length: 5",
                           "Transfer-Encoding: chunked") + b"0\r\n\r\n"
    answer = rawhttp.exchange(bank.port, request)
    _assert_json_error(answer, 400, "bad_request")
    assert answer.closed


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (rawhttp.head("GET", "/.well-known/tchain.json?q=" + "a" * 20_000), 414, "uri_too_long"),
    (rawhttp.head("GET", "/.well-known/tchain.json", "X-Big: " + "a" * 20_000), 431,
     "headers_too_large"),
    (rawhttp.head("GET", "/.well-known/tchain.json",
                  *(f"X-Many-{i}: {'a' * 90}" for i in range(220))), 431, "headers_too_large"),
    (b"THIS IS NOT HTTP\r\n\r\n", 400, "bad_request"),
    (b"GET /.well-known/tchain.json HTTP/1.1\r\n\r\n", 400, "bad_request"),  # no Host
    (rawhttp.head("GET", "/.well-known/tchain.json", "Bad Header: x"), 400, "bad_request"),
    (rawhttp.head("POST", "/v1/intents", "Content-Length: 1x"), 400, "bad_request"),
    (rawhttp.head("POST", "/v1/intents", "Transfer-Encoding: gzip"), 501, "not_implemented"),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
], ids=["uri-20k", "header-20k", "headers-220", "not-http", "no-host", "bad-header-name",
        "bad-length", "gzip-coding", "http-2.0"])
def test_a_malformed_or_oversized_head_gets_a_json_error(bank, baseline, request_bytes, status,
                                                          code):
    answer = rawhttp.exchange(bank.port, request_bytes)
    _assert_json_error(answer, status, code)
    assert answer.closed


def test_an_oversized_head_sent_in_pieces_gets_a_json_error(bank, baseline):
    """The same 20 KB URI, a few bytes at a time: refused once too long, not after."""
    with rawhttp.connect(bank.port) as sock:
        sock.sendall(b"GET /.well-known/tchain.json?q=")
        for _ in range(20):
            if not rawhttp.send_all(sock, b"a" * 1000):
                break
            time.sleep(0.01)
        answer = rawhttp.read_answer(sock)
    _assert_json_error(answer, 414, "uri_too_long")


def test_a_request_not_complete_in_time_gets_408_and_is_closed(bank, baseline):
    """A head not ended in time after its first byte (``--head-timeout``), and a body not
    complete in time after its head (``--body-timeout``), each get 408 and a closed
    connection; an idle keep-alive connection is closed after ``--keepalive`` without a
    word."""
    answers: dict[str, Any] = {}

    def run(name: str, request: bytes, wait: float) -> None:
        with rawhttp.connect(bank.port, timeout=wait + 10) as sock:
            started = time.monotonic()
            if request:
                sock.sendall(request)
                answers[name] = (rawhttp.read_answer(sock, wait + 10),
                                 time.monotonic() - started)
            else:
                answers[name] = (rawhttp.wait_closed(sock, wait + 10),
                                 time.monotonic() - started)

    cases = {"head": (b"GET /.well-known/tchain.json HTTP/1.1\r\nHost: x\r\n", HEAD_TIMEOUT),
             "body": (rawhttp.head("POST", "/v1/intents", "Content-Length: 100") + b"{",
                      BODY_TIMEOUT),
             "idle": (b"", KEEPALIVE)}
    threads = [threading.Thread(target=run, args=(name, request, wait))
               for name, (request, wait) in cases.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("head", "body"):
        answer, took = answers[name]
        _assert_json_error(answer, 408, "request_timeout")
        assert answer.closed, name
        assert cases[name][1] - 0.5 <= took <= cases[name][1] + 5, (name, took)
    closed, took = answers["idle"]
    assert closed and KEEPALIVE - 0.5 <= took <= KEEPALIVE + 5, took


def test_expect_100_continue_gets_its_go_ahead_or_the_refusal_at_once(bank, baseline):
    with rawhttp.connect(bank.port) as sock:
        sock.sendall(rawhttp.head("POST", "/v1/intents", "Expect: 100-continue",
                                  f"Content-Length: {MAX_BODY + 1}"))
        _assert_json_error(rawhttp.read_answer(sock), 413, "too_large")
    with rawhttp.connect(bank.port) as sock:
        sock.sendall(rawhttp.head("POST", "/v1/intents", "Expect: 100-continue",
                                  "Content-Length: 2"))
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"{}")
        _assert_json_error(rawhttp.read_answer(sock), 400, "bad_request")


def test_the_attacks_leave_nothing_behind(bank, baseline):
    """Run last: every thread, descriptor and connection the attacks cost is given back."""
    def given_back() -> None:
        held = _quiet(bank)
        assert held == baseline, f"held {held}, before the attacks {baseline}"

    eventually(given_back, timeout=30)
