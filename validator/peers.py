"""Peer trust: pinning another bank's name and key from its signed well-known document.

The paper leaves establishing trust between validators outside the system (§3.1, 3-4); here an
operator decides to trust a peer by URL, and we pin what that URL's signed document says. Once
pinned, a peer's key never changes silently: re-adding with another key is refused.
"""

from __future__ import annotations

import socket
from typing import Any

import requests

from federation.records import WELL_KNOWN_PATH, verify_well_known
from tchain.errors import VerificationError
from tchain.store import Writer
from validator.config import BankConfig, open_ledger
from validator.errors import ValidatorError

__all__ = ["PeerError", "add_peer", "fetch_well_known"]

TIMEOUT = 10


class PeerError(ValidatorError):
    """A peer could not be reached, or its document cannot be trusted."""

    code = "peer_error"
    status = 502


def fetch_well_known(url: str) -> dict[str, Any]:
    """Fetch and verify a bank's signed well-known document; return the document.

    Raises:
        PeerError: in one sentence that says what went wrong in the operator's words (not
            urllib3's repr of its retry state).
    """
    try:
        response = requests.get(url.rstrip("/") + WELL_KNOWN_PATH, timeout=TIMEOUT)
    except requests.RequestException as e:
        raise PeerError(f"cannot reach {url}: {_why_unreachable(e)}") from e
    if response.status_code != 200:
        raise PeerError(f"{url} is not a TChain bank, or not one that serves: it answered "
                        f"HTTP {response.status_code} for {WELL_KNOWN_PATH}")
    try:
        signed = response.json()
    except ValueError as e:
        raise PeerError(f"{url} is not a TChain bank: what it serves at {WELL_KNOWN_PATH} is "
                        "not JSON") from e
    try:
        return verify_well_known(signed)
    except VerificationError as e:
        raise PeerError(f"{url} serves a document that cannot be trusted: {e.message}") from e


def _why_unreachable(error: requests.RequestException) -> str:
    """What stopped a request, as an operator would say it."""
    if isinstance(error, requests.Timeout):
        return f"it did not answer within {TIMEOUT} s"
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                          requests.exceptions.InvalidSchema)):
        return "that is not an http(s) URL"
    cause = _root_cause(error)
    if isinstance(cause, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(cause, ConnectionRefusedError):
        return "nothing listens there (connection refused)"
    if isinstance(cause, OSError) and cause.strerror:
        return f"the connection failed ({cause.strerror.lower()})"
    return "the connection failed"


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception behind ``error`` (requests wraps urllib3, which wraps the
    socket's own error)."""
    seen = {id(error)}
    while True:
        inner = error.__cause__ or error.__context__ or next(
            (a for a in getattr(error, "args", ()) if isinstance(a, BaseException)), None)
        inner = getattr(inner, "reason", None) if inner is None else inner
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def add_peer(config: BankConfig, url: str) -> tuple[dict[str, Any], bool]:
    """Trust the bank at ``url``: pin its name, key, url and chain.

    Returns:
        The pinned record, and whether it is new (False when it was already pinned as is).

    Raises:
        PeerError: unreachable, untrustworthy, ourselves, or pinned earlier with another key.
    """
    document = fetch_well_known(url)
    if document["name"] == config.name:
        raise PeerError(f"{url} is this bank ({config.name}); a bank is not its own peer")
    record = {"name": document["name"], "key": document["public_key"],
              "url": document["api_url"], "chain": document["chain"]}
    ledger = open_ledger(config)

    def work(w: Writer) -> bool:
        pinned = w.peer(record["name"])
        if pinned is not None and pinned["key"] != record["key"]:
            raise PeerError(f"{record['name']} is pinned with key {pinned['key']}, but {url} now "
                            f"serves key {record['key']}; refusing to change a pinned key")
        if pinned == record:
            return False
        w.put_peer(record)
        return True

    try:
        return record, ledger.store.write(work)
    finally:
        ledger.store.close()
