"""Peer trust: pinning another bank's name and key from its signed well-known document.

The paper leaves establishing trust between validators outside the system (§3.1, 3-4); here an
operator decides to trust a peer by URL, and we pin what that URL's signed document says. Once
pinned, a peer's key never changes silently: re-adding with another key is refused.
"""

from __future__ import annotations

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
    """Fetch and verify a bank's signed well-known document; return the document."""
    try:
        response = requests.get(url.rstrip("/") + WELL_KNOWN_PATH, timeout=TIMEOUT)
        response.raise_for_status()
        signed = response.json()
    except (requests.RequestException, ValueError) as e:
        raise PeerError(f"cannot fetch {url}{WELL_KNOWN_PATH}: {e}") from e
    try:
        return verify_well_known(signed)
    except VerificationError as e:
        raise PeerError(f"{url} serves a document that cannot be trusted: {e.message}") from e


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
