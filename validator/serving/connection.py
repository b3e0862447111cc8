"""One HTTP/1.1 connection: requests read whole with h11, within sizes and times, each handed to
the application only once its head and body are complete; the answers written back.

A slow client therefore holds nothing but this coroutine: no thread waits on its bytes. What
a client may take (:class:`Limits`): the head of a request must be complete within
``head_timeout`` of its first byte, the body within ``body_timeout`` of the head, and a
keep-alive connection that starts no request within ``keepalive`` is closed. Every refusal of
the HTTP layer itself (too long, too slow, malformed, framed twice) is the JSON of PROTOCOL.md
§6, sent with ``Connection: close``; a body past the limit is refused before any of it reaches
the application, so it is never applied in part.

The protocol is h11's (its state machine, framing, ``100-continue``); this module adds the
limits, the timeouts, and closing a refused connection gently: it stops sending, then reads
and drops what the client still sends for a moment, so that the client reads the refusal
rather than a reset.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

import h11

from tchain.encoding import canonical
from validator.errors import HTTP_ERROR_CODES

__all__ = ["Answer", "HTTPConnection", "Limits", "Respond", "error_answer"]

log = logging.getLogger("tchain.serving")

MAX_RECV = 1 << 16
_REASONS = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}


@dataclass(frozen=True)
class Limits:
    """What one request may take of the server: sizes in bytes, times in seconds."""

    max_body: int = 1 << 20
    max_target: int = 8 * 1024  # the request target: path and query
    max_head: int = 16 * 1024  # the request line and every header
    head_timeout: float = 10.0  # from the first byte of a request to the end of its head
    body_timeout: float = 20.0  # from the end of the head to the end of the body
    keepalive: float = 5.0  # an open connection without a request
    send_timeout: float = 30.0  # for a client to take an answer
    linger: float = 2.0  # reading and dropping what a refused client still sends


@dataclass(frozen=True)
class Answer:
    """A complete answer; ``headers`` as lower-case names, without framing (added here)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


# The application: the request's head, its whole body and the client's address.
Respond = Callable[[h11.Request, bytes, tuple[str, int]], Awaitable[Answer]]


def error_answer(status: int, message: str) -> Answer:
    """The JSON error of PROTOCOL.md §6."""
    body = canonical({"error": HTTP_ERROR_CODES.get(status, f"http_{status}"),
                      "message": message})
    return Answer(status, [(b"content-type", b"application/json")], body)


class _Refusal(Exception):
    """The request is refused by the HTTP layer: answered, then the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.answer = error_answer(status, message)


class _Date:
    """The Date header's value, made once a second."""

    second = -1
    value = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.value = second, formatdate(second, usegmt=True).encode("ascii")
        return cls.value


class HTTPConnection:
    """Serves the requests of one client connection, one at a time, until either side closes
    it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 respond: Respond, limits: Limits, *, access_log: bool = False,
                 refused: Callable[[int], None] | None = None) -> None:
        self._reader = reader
        self._refused = refused  # told the status of each answer this layer makes itself
        self._writer = writer
        self._respond = respond
        self._limits = limits
        self._access_log = access_log
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head)
        peer = writer.get_extra_info("peername")
        self._client: tuple[str, int] = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self._loop = asyncio.get_running_loop()
        self._idle = True  # no byte of the next request has come
        self._closing = False  # the worker is stopping: close after the answer in progress
        self._task: asyncio.Task[None] | None = None

    def close_when_idle(self) -> None:
        """Let the request in progress finish and close then; close at once if there is
        none (the worker is stopping)."""
        self._closing = True
        if self._idle and self._task is not None:
            self._task.cancel()

    async def serve(self) -> None:
        self._task = asyncio.current_task()
        try:
            while not self._closing:
                try:
                    request = await self._read_request()
                except _Refusal as refusal:
                    await self._refuse(refusal.answer)
                    return
                if request is None:
                    return
                head, body = request
                answer = await self._answer(head, body)
                await self._send(answer, closing=self._closing)
                if self._access_log:
                    method, target = head.method.decode(), head.target.decode("latin-1")
                    log.info('%s "%s %s" %d %d', self._client[0], method, target,
                             answer.status, len(answer.body),
                             extra={"client": self._client[0], "method": method,
                                    "target": target, "status": answer.status,
                                    "bytes": len(answer.body)})
                if self._h11.our_state is h11.MUST_CLOSE:
                    return
                self._h11.start_next_cycle()
        except (ConnectionError, TimeoutError):
            self._writer.transport.abort()  # the client is gone, or takes nothing: no goodbye
        finally:
            self._writer.close()

    async def _read_request(self) -> tuple[h11.Request, bytes] | None:
        """The next request, whole; None when the client closed the connection or it stayed
        idle past ``keepalive``."""
        limits = self._limits
        self._idle = not self._h11.trailing_data[0]  # bytes of a request sent with the last
        bound = limits.keepalive if self._idle else limits.head_timeout
        try:
            async with asyncio.timeout(bound) as timeout:
                head = await self._read_head(timeout)
                if head is None:
                    return None
                self._check(head)
                timeout.reschedule(self._loop.time() + limits.body_timeout)
                body = await self._read_body()
        except TimeoutError:
            if self._idle:
                return None
            raise _Refusal(408, "the request did not arrive in time: a head must be complete "
                                f"within {limits.head_timeout:g} s of its first byte, a body "
                                f"within {limits.body_timeout:g} s of its head") from None
        except h11.RemoteProtocolError as e:
            if self._h11.trailing_data[1]:
                return None  # the client closed the connection in the middle of a request
            raise self._protocol_refusal(e) from None
        if body is None:
            return None
        return head, body

    async def _read_head(self, timeout: asyncio.Timeout) -> h11.Request | None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                data = await self._reader.read(MAX_RECV)
                if data and self._idle:  # the request has begun: its head has a deadline
                    self._idle = False
                    timeout.reschedule(self._loop.time() + self._limits.head_timeout)
                self._h11.receive_data(data)
            elif isinstance(event, h11.Request):
                return event
            else:  # ConnectionClosed
                return None

    def _check(self, head: h11.Request) -> None:
        """Refuse another version of HTTP, a head past the sizes, a body announced past the
        limit or framed twice."""
        limits = self._limits
        if head.http_version not in (b"1.0", b"1.1"):  # h11 parses any d.d
            raise _Refusal(505, f"HTTP/{head.http_version.decode()} is not served here; "
                                "send HTTP/1.1")
        if len(head.target) > limits.max_target:
            raise _Refusal(414, f"the request target is longer than the {limits.max_target} "
                                "bytes accepted")
        size = len(head.method) + len(head.target) + sum(len(n) + len(v) + 4
                                                          for n, v in head.headers)
        if size > limits.max_head:
            raise _Refusal(431, f"the request head is longer than the {limits.max_head} "
                                "bytes accepted")
        names = {name for name, _ in head.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            raise _Refusal(400, "a request may carry Content-Length or Transfer-Encoding, "
                                "not both")
        length = next((int(v) for n, v in head.headers if n == b"content-length"), 0)
        if length > limits.max_body:
            raise _Refusal(413, f"the request body is larger than the {limits.max_body} "
                                "bytes accepted")

    async def _read_body(self) -> bytes | None:
        if self._h11.they_are_waiting_for_100_continue:
            go_ahead = h11.InformationalResponse(status_code=100, headers=[])
            self._writer.write(self._h11.send(go_ahead))
        body = bytearray()
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as e:
                if e.error_status_hint == 431:  # (not the head's: a line of a chunked body)
                    raise _Refusal(400, "a chunk's size line is longer than the "
                                        f"{self._limits.max_head} bytes accepted") from None
                raise
            if event is h11.NEED_DATA:
                self._h11.receive_data(await self._reader.read(MAX_RECV))
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._limits.max_body:  # chunked: no length said ahead
                    raise _Refusal(413, "the request body is larger than the "
                                        f"{self._limits.max_body} bytes accepted")
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:  # ConnectionClosed
                return None

    def _protocol_refusal(self, error: h11.RemoteProtocolError) -> _Refusal:
        status = error.error_status_hint
        if status == 431:  # h11 saw more than max_head bytes without the end of a head
            received = self._h11.trailing_data[0]
            line_end = received.find(b"\r\n")
            if line_end == -1 or line_end > self._limits.max_target:
                return _Refusal(414, "the request target is longer than the "
                                     f"{self._limits.max_target} bytes accepted")
            return _Refusal(431, f"the request head is longer than the "
                                 f"{self._limits.max_head} bytes accepted")
        if status == 501:
            return _Refusal(501, "the only transfer coding accepted is chunked")
        return _Refusal(status, f"the request is not valid HTTP/1.1: {str(error)[:200]}")

    async def _answer(self, head: h11.Request, body: bytes) -> Answer:
        try:
            return await self._respond(head, body, self._client)
        except Exception:  # the application answers its own errors: this is our bug
            log.exception("the application raised instead of answering")
            if self._refused is not None:
                self._refused(500)
            return error_answer(500, "internal error; the bank's log has the details")

    async def _send(self, answer: Answer, *, closing: bool) -> None:
        headers = [*answer.headers, (b"date", _Date.now())]
        if closing:
            headers.append((b"connection", b"close"))
        if not any(name == b"content-length" for name, _ in headers):
            headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
        data = self._h11.send(h11.Response(status_code=answer.status, headers=headers,
                                           reason=_REASONS.get(answer.status, b"")))
        if answer.body:
            data += self._h11.send(h11.Data(data=answer.body))
        data += self._h11.send(h11.EndOfMessage())
        self._writer.write(data)
        if self._writer.transport.get_write_buffer_size():
            async with asyncio.timeout(self._limits.send_timeout):
                await self._writer.drain()

    async def _refuse(self, answer: Answer) -> None:
        """Send a refusal if the protocol still allows an answer, then close gently."""
        if self._refused is not None:
            self._refused(answer.status)
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                await self._send(answer, closing=True)
            except (ConnectionError, TimeoutError, h11.LocalProtocolError):
                self._writer.transport.abort()
                return
        await self._linger()

    async def _linger(self) -> None:
        """Stop sending, then drop what the client still sends, for a moment: closing with
        its bytes unread would reset the connection, and the client might lose the
        refusal."""
        if not self._writer.can_write_eof():
            return
        try:
            self._writer.write_eof()
            dropped = 0
            async with asyncio.timeout(self._limits.linger):
                while dropped <= 4 * self._limits.max_body:
                    data = await self._reader.read(MAX_RECV)
                    if not data:
                        return
                    dropped += len(data)
        except (ConnectionError, TimeoutError):
            return
