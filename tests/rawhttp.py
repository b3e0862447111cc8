"""HTTP/1.1 on raw sockets, for tests that speak to a server as a hostile client would: a
request line or headers past any limit, a body framed twice, a head trickled in a byte at a
time. ``requests`` and ``http.client`` refuse to send most of these, so they are written here
byte by byte, and the answer is parsed just enough to check it."""

from __future__ import annotations

import json
import socket
import time
import weakref
from dataclasses import dataclass
from typing import Any

# Bytes read past one answer (the next pipelined answer's), kept for the next read.
_unread: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


@dataclass
class Answer:
    """An HTTP answer as read off the socket; ``closed``: the server closed the connection
    after it."""

    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool

    def json(self) -> Any:
        return json.loads(self.body)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(method: str, target: str, *headers: str, host: str = "127.0.0.1") -> bytes:
    """A request head: the request line, ``Host`` and ``headers`` (each ``"Name: value"``)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def send_all(sock: socket.socket, data: bytes) -> bool:
    """Send ``data``; False when the server closed the connection meanwhile (it may have
    answered before reading everything)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def read_answer(sock: socket.socket, timeout: float = 15.0, *, to_head: bool = False) -> Answer:
    """Read one answer (a Content-Length body, none ``to_head``: an answer to HEAD); then
    whether the server closed the connection, looking for that a moment if it said
    ``Connection: close``."""
    sock.settimeout(timeout)
    data = _unread.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before an answer; got {data!r}")
        data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if to_head else int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the answer")
        body += chunk
    if body[length:]:
        _unread[sock] = body[length:]
    closed = False
    if headers.get("connection", "").lower() == "close":
        closed = wait_closed(sock, timeout)
    return Answer(status, headers, body[:length], closed)


def wait_closed(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes the connection within ``timeout`` s (any bytes it sends
    meanwhile are read and dropped)."""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def exchange(port: int, request: bytes, timeout: float = 15.0) -> Answer:
    """One request on a new connection, and its answer."""
    with connect(port, timeout) as sock:
        send_all(sock, request)
        return read_answer(sock, timeout)


def chunked(body: bytes, size: int = 65536) -> bytes:
    """``body`` in the chunked transfer coding, with its last chunk."""
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
             for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"
