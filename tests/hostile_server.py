"""A server on loopback that answers as a hostile bank would: its head or body trickled a byte
at a time, a body without end, a length past any limit, a compressed bomb. For the tests of
what asks other banks (federation.asking: the wallet, the outbox sender)."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable

__all__ = ["HostileServer"]

BODY = b'{"ok":true}'


def _trickle(data: bytes, every: float) -> Callable[[socket.socket, threading.Event], None]:
    def send(conn: socket.socket, stop: threading.Event) -> None:
        for byte in data:
            if stop.wait(every):
                return
            conn.sendall(bytes([byte]))
    return send


def _endless(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 16, b" " * (1 << 16))
    while not stop.is_set():
        conn.sendall(chunk)


def _head(extra: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def _bomb() -> Callable[[socket.socket, threading.Event], None]:
    answer = _head(b"Content-Encoding: gzip\r\n", gzip.compress(b" " * (80 << 20)))
    return lambda conn, stop: conn.sendall(answer)


MODES: dict[str, Callable[[], Callable[[socket.socket, threading.Event], None]]] = {
    "trickled head": lambda: _trickle(_head(b"", BODY), 0.05),
    "trickled body": lambda: lambda c, s: (c.sendall(_head(b"", BODY)[:-len(BODY)]),
                                           _trickle(BODY, 0.5)(c, s)),
    "endless body": lambda: _endless,
    "length past the limit": lambda: lambda c, s: c.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{"),
    "gzip bomb": _bomb,  # (made once, here: not counted in the asker's memory)
    # (one answer per connection, said so: this server takes no second request on it)
    "honest": lambda: lambda c, s: c.sendall(_head(b"Connection: close\r\n", BODY)),
}


class HostileServer:
    """Answers every request on 127.0.0.1:``port`` the way ``mode`` says (MODES)."""

    def __init__(self, mode: str) -> None:
        self._answer = MODES[mode]()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # (a closed listener does not wake an accept)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._listener.close()
        for thread in [self._thread, *self._threads]:
            thread.join(10)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(0.2)
                conn.recv(1 << 16)  # the request (small: one read takes it)
                self._answer(conn, self._stop)
                deadline = time.monotonic() + 30
                while not self._stop.is_set() and time.monotonic() < deadline:
                    try:
                        if not conn.recv(1 << 16):
                            return  # the client closed
                    except TimeoutError:
                        continue
            except OSError:
                return
