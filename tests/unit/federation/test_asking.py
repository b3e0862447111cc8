"""Asking another bank (federation.asking): whatever a hostile server does at the HTTP layer,
the exchange ends within its deadline and reads at most its limit, and the asker keeps no
thread, socket or memory of it (attack 22: a wallet read a 30 MB answer; a peer trickling its
answer held a bank's outbox sender for as long as it liked)."""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from federation.asking import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    AnswerTooSlow,
    ask,
    bounded_session,
)
from tests.hostile_server import BODY, HostileServer


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("mode", ["trickled head", "trickled body"])
def test_a_trickled_answer_ends_at_the_deadline(mode):
    """Each byte comes well within the per-read timeout (3 s): only a bound on the whole
    exchange ends it."""
    with HostileServer(mode) as server:
        session = bounded_session()
        began = time.monotonic()
        with pytest.raises(AnswerTooSlow, match="no whole answer within 1 s"):
            ask(session, "GET", server.url, seconds=1, timeout=(2, 3))
        assert time.monotonic() - began < 3.5  # (the trickle takes 4 s; slack for a busy CI)
        session.close()


@pytest.mark.parametrize("mode", ["endless body", "length past the limit"])
def test_an_answer_past_the_limit_is_refused_and_not_kept(mode):
    with HostileServer(mode) as server:
        session = bounded_session()
        tracemalloc.start()
        try:
            with pytest.raises(AnswerTooLarge):
                ask(session, "GET", server.url, seconds=20, timeout=(2, 3))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        session.close()
    assert peak < 3 * MAX_ANSWER_BYTES, peak


def test_a_compressed_answer_is_never_unpacked():
    """80 MiB of spaces in 80 KB of gzip: taken as the bytes sent (which no parser takes for
    JSON), never unpacked."""
    with HostileServer("gzip bomb") as server:
        session = bounded_session()
        tracemalloc.start()
        try:
            answer = ask(session, "GET", server.url, seconds=20, timeout=(2, 3))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        session.close()
    assert answer.body[:2] == b"\x1f\x8b" and len(answer.body) < 1 << 20
    assert peak < 8 << 20, peak


def test_an_honest_answer_is_read_whole():
    with HostileServer("honest") as server:
        session = bounded_session()
        first = ask(session, "GET", server.url, seconds=5, timeout=(2, 3))
        assert (first.status, first.body) == (200, BODY)
        session.close()


def test_honest_answers_read_whole_keep_their_connection():
    """A bank's sender asks a peer many times a second: each answer read to its end leaves
    the connection to the pool, as ``requests`` alone does."""
    clients: set[tuple[str, int]] = set()

    class Answers(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            clients.add(self.client_address)
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        session = bounded_session()
        answers = [ask(session, "GET", f"http://127.0.0.1:{server.server_port}/", seconds=5,
                       timeout=(2, 3)) for _ in range(5)]
        session.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert [a.body for a in answers] == [BODY] * 5
    assert len(clients) == 1


def test_many_exchanges_cut_at_their_deadline_leave_nothing_behind():
    with HostileServer("trickled head") as server:
        session = bounded_session()
        with pytest.raises(AnswerTooSlow):  # (the watchdog's thread starts)
            ask(session, "GET", server.url, seconds=0.2, timeout=(2, 3))
        threads, descriptors = threading.active_count(), _open_descriptors()
        for _ in range(20):
            with pytest.raises(AnswerTooSlow):
                ask(session, "GET", server.url, seconds=0.2, timeout=(2, 3))
        session.close()
        assert threading.active_count() <= threads
        assert _open_descriptors() <= descriptors


def test_a_forked_child_bounds_its_own_exchanges():
    """The bank's master forks its workers and sender: a child has none of its parent's
    threads (and may have copied a lock held), so the watchdog starts anew in it."""
    with HostileServer("trickled head") as server:
        session = bounded_session()
        with pytest.raises(AnswerTooSlow):  # the parent's watchdog runs
            ask(session, "GET", server.url, seconds=0.2, timeout=(2, 3))
        with warnings.catch_warnings():  # (3.12 warns of a fork with threads: that is the case)
            warnings.simplefilter("ignore", DeprecationWarning)
            child = os.fork()
        if child == 0:
            code = 1
            try:
                began = time.monotonic()
                try:
                    ask(bounded_session(), "GET", server.url, seconds=0.3, timeout=(2, 3))
                except AnswerTooSlow:
                    code = 0 if time.monotonic() - began < 3 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        session.close()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
