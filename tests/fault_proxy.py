"""A fault-injecting HTTP proxy on 127.0.0.1, put between two validators.

A bank's config names the proxy as its public URL, so its peers' messages pass through it.
Each request meets one fault, drawn with the weights set by :meth:`FaultProxy.set`:

  drop        the connection is closed before the request reaches the bank
  delay       the request waits 0.1-1.5 s, then goes through
  lose_reply  the bank gets the request and commits, but its reply is never sent back
  blackhole   the connection is held open without an answer for ``hold`` seconds, then closed
  pass        no fault

A proxy in front of one bank only cuts one direction of the traffic. With ``only`` set, the
faults meet only requests whose body contains those bytes (one message type, say), and every
other request passes. Every request that reaches the bank is kept in ``relayed`` (method, path,
headers, body), for tests that replay one.
"""

from __future__ import annotations

import http.client
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("drop", "delay", "lose_reply", "blackhole")


class FaultProxy:
    def __init__(self, seed: int = 0, hold: float = 3.0) -> None:
        self.upstream: tuple[str, int] | None = None
        self.weights: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self.hold = hold
        self.only: bytes | None = None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._healed = threading.Event()
        self.relayed: list[tuple[str, str, dict[str, str], bytes]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self, upstream_port: int) -> FaultProxy:
        self.upstream = ("127.0.0.1", upstream_port)
        self._thread.start()
        return self

    def set(self, **weights: float) -> None:
        """Fault probabilities per request, e.g. ``set(drop=0.3, lose_reply=0.2)``."""
        unknown = set(weights) - set(FAULTS)
        assert not unknown, f"unknown faults {unknown}"
        with self._lock:
            self.weights = dict(weights)
            self._healed.clear()

    def heal(self) -> None:
        with self._lock:
            self.weights = {}
            self._healed.set()  # blackholed connections are let go at once

    def draw(self, body: bytes = b"") -> str:
        with self._lock:
            if self.only is not None and self.only not in body:
                self.counts["pass"] += 1
                return "pass"
            roll = self._rng.random()
            for fault, weight in self.weights.items():
                if roll < weight:
                    self.counts[fault] += 1
                    return fault
                roll -= weight
            self.counts["pass"] += 1
            return "pass"

    def close(self) -> None:
        self.heal()
        self._server.shutdown()
        self._server.server_close()

    @property
    def injected(self) -> int:
        return sum(n for fault, n in self.counts.items() if fault != "pass")


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the campaign counts faults itself

        def do_GET(self) -> None:
            self._relay()

        def do_POST(self) -> None:
            self._relay()

        def _relay(self) -> None:
            self.close_connection = True
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = proxy.draw(body)
            if fault == "drop":
                return
            if fault == "blackhole":
                proxy._healed.wait(proxy.hold)
                return
            if fault == "delay":
                threading.Event().wait(random.uniform(0.1, 1.5))
            assert proxy.upstream is not None
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type")}
                with proxy._lock:
                    proxy.relayed.append((self.command, self.path, headers, body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                payload = answer.read()
            except OSError:  # the bank is down (killed, restarting): its peer sees a cut
                return
            finally:
                upstream.close()
            if fault == "lose_reply":
                return
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.getheader("Content-Type") or "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

    return Handler
