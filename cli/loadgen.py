"""A load generator for `tchain bench`: HTTP/1.1 keep-alive clients in several processes.

Every request is built (and every intent signed) before the clock starts. Each connection
sends its own list of requests in order, one at a time, waiting for each answer (a customer's
intents must arrive in seq order); the processes start together on a shared event, and
throughput is counted from that start to the last answer. A client on raw sockets costs far
less CPU per request than the server spends on it (docs/performance.md), so the server, not
the generator, is what is measured.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier, Event
from typing import Any

__all__ = ["LoadResult", "run_load"]


@dataclass
class LoadResult:
    """What the clients saw: every latency (s), every status, and the bodies if kept."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def _request(port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode("ascii") + body


def _exchange(sock: socket.socket, request: bytes, buffer: bytearray) -> tuple[int, bytes]:
    """Send one request and read its answer (status, body) off a keep-alive connection."""
    sock.sendall(request)
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        body += chunk
    buffer[:] = body[length:]
    return status, bytes(body[:length])


def _client_process(port: int, path: str, conversations: list[list[bytes]], keep: bool,
                    ready: Barrier, go: Event, out: multiprocessing.Queue[Any]) -> None:
    requests = [[_request(port, path, body) for body in conv] for conv in conversations]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in conversations]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: list[bytes] = []
    lock = threading.Lock()

    def run(sock: socket.socket, conv: list[bytes]) -> None:
        buffer = bytearray()
        mine: list[tuple[float, int, bytes]] = []
        for request in conv:
            t0 = time.perf_counter()
            status, body = _exchange(sock, request, buffer)
            mine.append((time.perf_counter() - t0, status, body if keep else b""))
        with lock:
            for latency, status, body in mine:
                latencies.append(latency)
                statuses[status] = statuses.get(status, 0) + 1
                if keep:
                    bodies.append(body)

    threads = [threading.Thread(target=run, args=(s, c)) for s, c in zip(socks, requests,
                                                                          strict=True)]
    ready.wait()
    go.wait()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    end = time.monotonic()
    for s in socks:
        s.close()
    out.put((end, latencies, statuses, bodies))


def run_load(port: int, path: str, conversations: list[list[bytes]], *, processes: int = 2,
             keep_bodies: bool = False) -> LoadResult:
    """POST every body of every conversation to ``path``; one connection per conversation,
    spread over ``processes`` client processes. Returns once every answer is in."""
    ctx = multiprocessing.get_context("fork")
    processes = max(1, min(processes, len(conversations)))
    ready = ctx.Barrier(processes + 1)
    go = ctx.Event()
    out = ctx.Queue()
    shares = [conversations[i::processes] for i in range(processes)]
    workers = [ctx.Process(target=_client_process,
                           args=(port, path, share, keep_bodies, ready, go, out), daemon=True)
               for share in shares]
    for w in workers:
        w.start()
    try:
        ready.wait(timeout=60)
        start = time.monotonic()
        go.set()
        result = LoadResult(0.0)
        last = start
        for _ in workers:
            end, latencies, statuses, bodies = out.get(timeout=300)
            last = max(last, end)
            result.latencies += latencies
            result.bodies += bodies
            for status, n in statuses.items():
                result.statuses[status] = result.statuses.get(status, 0) + n
        result.seconds = last - start
        return result
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.kill()
                w.join()
