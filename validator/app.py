"""The Flask app factory: one app per worker process, JSON errors for every status.

No config is read at import time; ``create_app`` takes a mapping and the ``TCHAIN_`` environment
(``TCHAIN_DATA_DIR``...). The debugger is never on, whatever ``FLASK_DEBUG`` says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, NotFound

import federation
from tchain.encoding import canonical
from tchain.errors import (
    BadRequestError,
    InternalError,
    RateLimitedError,
    TChainError,
    wire_errors,
)
from validator import api, health, metrics, openapi, plan_api
from validator.bank import Bank
from validator.config import BankConfig
from validator.errors import HTTP_ERROR_CODES, ConfigError
from validator.ratelimit import DEFAULT_BURST, DEFAULT_RATE, RateLimiter

__all__ = ["create_app"]

log = logging.getLogger("tchain.validator")

MAX_BODY = 1 << 20


def _error(status: int, body: dict[str, Any]) -> Response:
    return Response(canonical(body), status=status, mimetype="application/json")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the validator app.

    Args:
        config: overrides; ``DATA_DIR`` (the bank's data directory) is required here or as
            ``TCHAIN_DATA_DIR``. ``STORE_OPTIONS`` passes options to the LMDB store;
            ``RATE_LIMIT`` (requests per second per key, 0 for none) and ``RATE_BURST``;
            ``METRICS_DIR``, the folder the workers of ``serve`` count in (None: in memory,
            validator/metrics.py).
    """
    app = Flask("validator")
    _route_paths_as_sent(app)
    app.config.from_mapping(MAX_CONTENT_LENGTH=MAX_BODY, DATA_DIR=None, STORE_OPTIONS={},
                            SETTLE_DEADLINE=None, FAULT=None, RATE_LIMIT=DEFAULT_RATE,
                            RATE_BURST=DEFAULT_BURST, METRICS_DIR=None)
    app.config.from_prefixed_env("TCHAIN")
    if config:
        app.config.from_mapping(config)
    app.config.update(DEBUG=False, TESTING=app.config.get("TESTING", False),
                      PROPAGATE_EXCEPTIONS=False)
    if not app.config["DATA_DIR"]:
        raise ConfigError("create_app needs DATA_DIR (or TCHAIN_DATA_DIR): the bank's data "
                          "directory")
    bank = Bank(BankConfig.load(app.config["DATA_DIR"]),
                settle_deadline=app.config["SETTLE_DEADLINE"], fault=app.config["FAULT"],
                **app.config["STORE_OPTIONS"])
    app.extensions["tchain.bank"] = bank
    app.extensions["tchain.limiter"] = RateLimiter(bank.config.data,
                                                   float(app.config["RATE_LIMIT"]),
                                                   int(app.config["RATE_BURST"]))
    app.extensions["tchain.federation"] = bank
    app.register_blueprint(federation.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(plan_api.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(health.blueprint)
    metrics.install(app, app.config["METRICS_DIR"])
    _register_error_handlers(app)
    return app


def _route_paths_as_sent(app: Flask) -> None:
    """A path with an empty segment is not found, rather than taken for another: werkzeug
    answers "/v1//chains" with a redirect (an HTML page) to "/v1/chains", and routes
    "//v1/chains" as "/v1/chains" (it strips leading slashes), while a signed request signs
    the path as sent. Called before the routes are added: each rule reads merge_slashes when
    it is bound."""
    app.url_map.merge_slashes = False

    @app.before_request
    def refuse_empty_segments() -> None:
        if "//" in request.environ.get("PATH_INFO", ""):
            raise NotFound()


def on_the_wire(e: TChainError) -> TChainError:
    """The error as a code of docs/protocol.md §6: a core error that reached the shell with a
    code that is none (``invalid``: something failed an offline check) is a request we cannot
    take (``bad_request``), never a code a client cannot know. The seventh outside attacker
    got an unsigned 422 ``invalid`` for a peer's lock."""
    if e.code in wire_errors():
        return e
    log.error("a %s (%s) reached the shell: answered bad_request", type(e).__name__, e.code)
    return BadRequestError(e.message)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(TChainError)
    def protocol_error(e: TChainError) -> Response:
        e = on_the_wire(e)
        if e.status >= 500:
            log.error("request failed: %s", e.message, exc_info=e)
        response = _error(e.status, e.to_dict())
        if isinstance(e, RateLimitedError):
            response.headers["Retry-After"] = str(-(-int(e.detail["retry_after_ms"]) // 1000))
        return response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        status = e.code or 500
        message = e.description or e.name
        if status == 413:
            message = f"request body is larger than the {MAX_BODY} bytes accepted"
        response = _error(status, {"error": HTTP_ERROR_CODES.get(status, f"http_{status}"),
                                   "message": message})
        allow = e.get_response().headers.get("Allow") if status == 405 else None
        if allow:
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception) -> Response:
        log.exception("internal error")
        return _error(500, {"error": InternalError.code,
                            "message": "internal error; the bank's log has the details"})
