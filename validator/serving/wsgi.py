"""The Flask app behind the event loop: each complete request is run as a WSGI call on a thread
of the worker's pool.

Threads, because the requests a worker has in flight at once must reach the LMDB store
together to share one commit and one fsync (Store.write's group commit, and the rounds of
validator/coalesce.py). The body is whole before the call (validator/serving/connection.py), so
the app reads it from memory and never waits on a client.
"""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes

import h11

from validator.serving.connection import Answer

__all__ = ["WSGIResponder", "started_pool"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Framed by the connection, not the app: dropped from the app's answer.
_HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
               b"upgrade", b"te", b"trailer", b"proxy-connection"}


def started_pool(threads: int) -> ThreadPoolExecutor:
    """A pool whose threads are all started now, rather than one by one under load: a worker
    holds the same threads from boot to exit (what it holds can be counted)."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="request")
    everyone = threading.Barrier(threads)
    for started in [pool.submit(everyone.wait) for _ in range(threads)]:
        started.result()
    return pool


class WSGIResponder:
    """Answers requests with a WSGI app run on ``pool``."""

    def __init__(self, app: WSGIApp, pool: ThreadPoolExecutor, *,
                 server: tuple[str, int]) -> None:
        self._app = app
        self._pool = pool
        self._server = server

    async def __call__(self, request: h11.Request, body: bytes,
                       client: tuple[str, int]) -> Answer:
        environ = self._environ(request, body, client)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, environ,
                                          request.method == b"HEAD")

    def _environ(self, request: h11.Request, body: bytes,
                 client: tuple[str, int]) -> dict[str, Any]:
        target = request.target
        path, _, query = target.partition(b"?")
        if path.startswith((b"http://", b"https://")):  # the absolute form, as to a proxy
            path = b"/" + (path.split(b"/", 3)[3:] or [b""])[0]
        raw = target.decode("latin-1")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method.decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"),
            "RAW_URI": raw,  # the path as sent: what a signed request signs
            "REQUEST_URI": raw,
            "SERVER_NAME": self._server[0],
            "SERVER_PORT": str(self._server[1]),
            "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
            "REMOTE_ADDR": client[0],
            "REMOTE_PORT": str(client[1]),
            "CONTENT_LENGTH": str(len(body)),  # the body is whole, however it was framed
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        for name, value in request.headers:
            if b"_" in name or name in (b"content-length", b"transfer-encoding"):
                continue  # X_Key would pass for X-Key once dashes become underscores
            text = value.decode("latin-1")
            if name == b"content-type":
                environ["CONTENT_TYPE"] = text
                continue
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        return environ

    def _call(self, environ: dict[str, Any], head: bool) -> Answer:
        """Run the app on this pool thread and collect its whole answer."""
        started: list[tuple[str, list[tuple[str, str]]]] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [(status, headers)]
            return written.append

        result = self._app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, app_headers = started[0]
        # A HEAD answer has no body, and the length a GET's would have (as the app said).
        headers = [(name, value) for name, value in
                   ((n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in app_headers)
                   if name not in _HOP_BY_HOP or (head and name == b"content-length")]
        body = b"" if head else b"".join(written)
        if not head:
            headers.append((b"content-length", str(len(body)).encode("ascii")))
        return Answer(int(status[:3]), headers, body)
