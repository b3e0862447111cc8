"""Peer trust: pinning another bank's name and key from its signed well-known document, and
letting a peer go.

The paper leaves establishing trust between validators outside the system (§3.1, 3-4); here an
operator decides to trust a peer by URL, and we pin what that URL's signed document says. Once
pinned, a peer's key never changes silently: re-adding with another key is refused.

Letting a peer go must not strand money (docs/protocol.md §13): while a flow with it is in
flight, or our position with it is not zero, the bank still owes it or is owed by it, and only
the peer's messages can settle that. So removing it is refused then, unless the operator
forces it; even then nothing is undone: the holds stay open, the flows' messages stay in the
outbox (the sender keeps them until the peer is pinned again) and the positions stay in the
books. The peer's key is remembered among the former peers: the entries that crossed with it
name it, and the audit must still know whose it was.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

import requests

from federation.asking import AnswerCut, ask, bounded_session
from federation.records import WELL_KNOWN_PATH, verify_well_known
from tchain.books import Position
from tchain.errors import VerificationError
from tchain.flow_states import IN_FLIGHT, Flow, OfferRecord
from validator.config import BankConfig, open_ledger
from validator.errors import ValidatorError
from validator.store import Reader, Writer

__all__ = ["PeerError", "Removal", "add_peer", "fetch_well_known", "list_peers", "remove_peer"]

# A peer is not removed while a flow with it is in flight (tchain.flow_states.IN_FLIGHT): a
# transfer or take holding our customer's value, an exchange whose peer has not settled (a
# defaulted one still may, and its settle message is still being sent).

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
        with bounded_session() as session:
            response = ask(session, "GET", url.rstrip("/") + WELL_KNOWN_PATH,
                           seconds=2 * TIMEOUT, timeout=TIMEOUT)
    except requests.RequestException as e:
        raise PeerError(f"cannot reach {url}: {_why_unreachable(e)}") from e
    if response.status != 200:
        raise PeerError(f"{url} is not a TChain bank, or not one that serves: it answered "
                        f"HTTP {response.status} for {WELL_KNOWN_PATH}")
    try:
        signed = json.loads(response.body)
    except ValueError as e:
        raise PeerError(f"{url} is not a TChain bank: what it serves at {WELL_KNOWN_PATH} is "
                        "not JSON") from e
    try:
        return verify_well_known(signed)
    except VerificationError as e:
        raise PeerError(f"{url} serves a document that cannot be trusted: {e.message}") from e


def _why_unreachable(error: requests.RequestException) -> str:
    """What stopped a request, as an operator would say it."""
    if isinstance(error, AnswerCut):
        return str(error)
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


def list_peers(config: BankConfig) -> list[dict[str, Any]]:
    """The pinned peers' records (name, key, url, chain), by name."""
    ledger = open_ledger(config)
    try:
        with ledger.store.read() as r:
            return sorted(r.peers(), key=lambda p: str(p["name"]))
    finally:
        ledger.store.close()


@dataclass(frozen=True)
class Removal:
    """A peer let go: its record, and what was still between the two banks (``--force``)."""

    record: dict[str, Any]
    in_flight: list[str]
    positions: list[tuple[str, Position]]

    @property
    def owed(self) -> str:
        """What was still between the banks, in words ("" if nothing)."""
        parts = []
        if self.in_flight:
            parts.append(f"{len(self.in_flight)} flow{'s' * (len(self.in_flight) > 1)} in "
                         f"flight ({', '.join(self.in_flight)})")
        if self.positions:
            parts.append("positions not zero (" + ", ".join(
                f"{asset} held {p.held}, incoming {p.incoming}, outgoing {p.outgoing}"
                for asset, p in self.positions) + ")")
        return " and ".join(parts)


def remove_peer(config: BankConfig, name: str, *, force: bool = False) -> Removal:
    """Stop trusting the peer bank ``name``.

    Refused while money is between the two banks (a flow in flight, a position not zero)
    unless ``force``; see the module docstring for what stays. Its offers are no longer listed
    here (nobody here could take them), and news of our offers waiting for it is dropped.

    Raises:
        PeerError: not pinned, or money is between the banks and ``force`` is not given.
    """
    ledger = open_ledger(config)

    def work(w: Writer) -> Removal:
        record = w.peer(name)
        if record is None:
            pinned = ", ".join(sorted(p["name"] for p in w.peers())) or "none"
            raise PeerError(f"{name} is not a pinned peer of {config.name} (pinned: {pinned})")
        removal = Removal(record, _in_flight(w, name), _positions(w, name))
        if removal.owed and not force:
            raise PeerError(f"{name} cannot be removed while money is between the two banks: "
                            f"{removal.owed}; let them settle, or pass --force")
        w.delete_peer(name)
        for offer_id, stored in w.records("offers"):
            offer = OfferRecord.from_dict(stored)
            if offer.validator == name and offer.is_open:
                w.put_record("offers", offer_id, offer.closed().to_dict())
        for message_id, item in w.records("outbox"):
            if item["peer"] == name and item["flow"] is None:
                w.delete_record("outbox", message_id)
        return removal

    try:
        return ledger.store.write(work)
    finally:
        ledger.store.close()


def _in_flight(r: Reader, peer: str) -> list[str]:
    flows = [(flow_id, Flow.from_dict(stored)) for flow_id, stored in r.records("flows")]
    return [f"{flow.type.value} {flow_id[:16]} {flow.state.value}"
            for flow_id, flow in flows if flow.peer == peer and flow.state in IN_FLIGHT]


def _positions(r: Reader, peer: str) -> list[tuple[str, Position]]:
    return sorted(((asset, p) for name, asset, p in r.positions()
                   if name == peer and p != Position()), key=lambda kept: kept[0])
