"""One HTTP connection of the validator's server, in-process: a toy WSGI app behind the real
connection code on a real loopback socket, with short time bounds so that the timeouts are
checked in a fraction of a second."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests import rawhttp
from validator.serving.connection import HTTPConnection, Limits
from validator.serving.wsgi import WSGIResponder, started_pool

LIMITS = Limits(max_body=1000, max_target=100, max_head=400, head_timeout=0.3,
                body_timeout=0.3, keepalive=0.3, linger=0.2)


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers what it was asked: method, path, raw URI and the body's length."""
    if environ["PATH_INFO"] == "/fail":
        raise RuntimeError("a bug")
    body = environ["wsgi.input"].read()
    answer = json.dumps({"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"],
                         "raw": environ["RAW_URI"], "length": len(body),
                         "host": environ.get("HTTP_HOST")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(answer))), ("Connection", "x")])
    return [answer]


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    pool = started_pool(2)
    ready = threading.Event()
    found: list[Any] = []  # the port, the loop, the event that stops it

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        respond = WSGIResponder(echo, pool, server=("127.0.0.1", found[0]))
        await HTTPConnection(reader, writer, respond, LIMITS).serve()

    async def main() -> None:
        stop = asyncio.Event()
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        found.extend([server.sockets[0].getsockname()[1], asyncio.get_running_loop(), stop])
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    ready.wait(10)
    yield found[0]
    found[1].call_soon_threadsafe(found[2].set)
    thread.join(10)
    pool.shutdown()


def test_keep_alive_and_pipelined_requests_are_answered_in_order(port):
    with rawhttp.connect(port) as sock:
        sock.sendall(rawhttp.head("GET", "/a") + rawhttp.head("GET", "/b%2Fc?q=1"))
        first, second = rawhttp.read_answer(sock), rawhttp.read_answer(sock)
        sock.sendall(rawhttp.head("POST", "/d", "Content-Length: 3") + b"abc")
        third = rawhttp.read_answer(sock)
    assert [a.status for a in (first, second, third)] == [200, 200, 200]
    assert first.json()["path"] == "/a"
    assert second.json() | {"length": 0} == {"method": "GET", "path": "/b/c", "length": 0,
                                              "raw": "/b%2Fc?q=1", "host": "127.0.0.1"}
    assert third.json()["length"] == 3
    assert "connection" not in second.headers  # the app's hop-by-hop header is dropped


def test_a_chunked_body_within_the_limit_reaches_the_app_whole(port):
    request = rawhttp.head("POST", "/", "Transfer-Encoding: chunked") + rawhttp.chunked(
        b"x" * 900, size=100)
    assert rawhttp.exchange(port, request).json()["length"] == 900


def test_head_has_the_length_the_app_said_and_no_body(port):
    with rawhttp.connect(port) as sock:
        sock.sendall(rawhttp.head("HEAD", "/a") + rawhttp.head("GET", "/a"))
        head = rawhttp.read_answer(sock, to_head=True)
        get = rawhttp.read_answer(sock)  # right after the head: HEAD's answer had no body
    assert int(head.headers["content-length"]) == len(get.body) + 1  # "HEAD" is one longer
    assert get.json()["method"] == "GET"


def test_an_app_that_raises_is_a_json_500_and_the_connection_goes_on(port):
    with rawhttp.connect(port) as sock:
        sock.sendall(rawhttp.head("GET", "/fail"))
        failed = rawhttp.read_answer(sock)
        sock.sendall(rawhttp.head("GET", "/a"))
        after = rawhttp.read_answer(sock)
    assert failed.status == 500 and failed.json()["error"] == "internal"
    assert after.status == 200


@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GET /a HTTP/1.1\r\nHost: x\r\n", 408, "request_timeout"),
    (rawhttp.head("POST", "/", "Content-Length: 10") + b"abc", 408, "request_timeout"),
    (rawhttp.head("GET", "/" + "a" * 200), 414, "uri_too_long"),
    (rawhttp.head("POST", "/", "Content-Length: 1001"), 413, "too_large"),
    (rawhttp.head("POST", "/", "Transfer-Encoding: chunked") + rawhttp.chunked(b"x" * 1001),
     413, "too_large"),
    # a chunk's size line past the head's bound (attack 22: 414, as if it were the target)
    (rawhttp.head("POST", "/", "Transfer-Encoding: chunked") + b"5;" + b"e" * 1000,
     400, "bad_request"),
])
def test_refusals_are_json_and_close_the_connection(port, request_bytes, status, code):
    answer = rawhttp.exchange(port, request_bytes, timeout=5)
    assert (answer.status, answer.json()["error"], answer.closed) == (status, code, True)


def test_an_idle_connection_is_closed_without_a_word(port):
    with rawhttp.connect(port) as sock:
        assert rawhttp.wait_closed(sock, 5)
