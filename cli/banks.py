"""Your bank and the banks it trusts: where an address's bank is, and what it says of a name.

A customer knows one bank: the one its wallet registered at (its key pinned then), or the one
named by ``--validator``. Every other bank is reached the way payments reach it, through that
bank's peers, listed in its signed well-known document with the key it pinned for each: so a
record from another bank is checked against the key our bank vouches for, never against a key
the other bank merely states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cli.client import BankClient
from cli.errors import BadUsageError, BankError, SecurityError
from federation.records import verify_record, verify_well_known
from tchain.errors import NotFoundError, UnknownValidatorError
from tchain.values import parse_address

__all__ = ["Bank", "Banks"]


@dataclass(frozen=True)
class Bank:
    """A bank by name, API URL and the key pinned for it."""

    name: str
    url: str
    key: str


class Banks:
    """A home bank and its peers.

    Args:
        url: the home bank's API URL.
        name: its name, and ``key`` its pinned key, when the wallet registered there; None for
            a bank met by URL (``lookup --validator``), trusted on first use.
        mine: whether the home bank is the wallet's own (errors say "your bank").
    """

    def __init__(self, url: str, *, name: str | None = None, key: str | None = None,
                 mine: bool = False) -> None:
        self._url = url.rstrip("/")
        self._name = name
        self._key = key
        self._mine = mine
        self._document: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """How the customer knows the home bank, for errors."""
        if self._mine:
            return f"your bank {self._name}"
        return self._name or f"the bank at {self._url}"

    def client(self, bank: Bank | None = None, *, label: str | None = None) -> BankClient:
        """A client of ``bank`` (the home bank by default), for public requests."""
        if bank is None:
            return BankClient(self._url, label=self.label)
        return BankClient(bank.url, label=label or bank.name)

    def document(self) -> dict[str, Any]:
        """The home bank's well-known document, its signature checked (against the pinned key
        when there is one)."""
        if self._document is None:
            document = verify_well_known(self.client().well_known())
            if self._key is not None and document["public_key"] != self._key:
                raise SecurityError(f"{self._url} now serves key {document['public_key']}, not "
                                    f"the key {self._key} this wallet registered with")
            if self._name is not None and document["name"] != self._name:
                raise SecurityError(f"{self._url} now calls itself {document['name']}, not "
                                    f"{self._name}, the bank this wallet registered at")
            self._document = document
        return self._document

    def home(self) -> Bank:
        if self._name is not None and self._key is not None:
            return Bank(self._name, self._url, self._key)
        document = self.document()
        return Bank(document["name"], self._url, document["public_key"])

    def peers(self) -> dict[str, Bank]:
        """The banks the home bank trusts, by name, with the keys it pinned."""
        return {p["name"]: Bank(p["name"], p["url"], p["key"])
                for p in self.document()["peers"]}

    def find(self, name: str, *, address: str | None = None) -> Bank:
        """The bank called ``name``: the home bank or one of its peers.

        ``address`` is what the customer typed, for the error when there is no such bank:
        a bare word that is no bank's name is taken for a customer's name without its bank.
        """
        home = self.home()
        if name == home.name:
            return home
        peers = self.peers()
        if name in peers:
            return peers[name]
        typed = address or name
        if "*" not in typed and "." not in typed:
            raise BadUsageError(f"{typed} is not an address: an address is name*bank, like "
                                f"{typed}*{home.name}")
        whose = name if "*" not in typed else f"{name} (the bank of {typed})"
        trusted = ", ".join(sorted(peers)) or "none"
        raise BankError(f"{whose} is not a bank {home.name} trusts; payments, offers and "
                        f"lookups reach only {home.name} and its peers ({trusted})",
                        code=UnknownValidatorError.code)

    def record(self, address: str) -> dict[str, Any]:
        """The signed federation record of ``address``, asked of the address's own bank and
        checked against the key the home bank pinned for it."""
        _, bank_name = parse_address(address)
        bank = self.find(bank_name, address=address)
        label = self.label if bank.url == self._url else f"{bank.name}, the bank of {address}"
        try:
            answer = self.client(bank, label=label).lookup("name", address)
        except BankError as e:
            if e.code != NotFoundError.code:
                raise
            raise BankError(f"{address} is not known at {bank.name}",
                            code=NotFoundError.code) from e
        record = verify_record(answer, bank.key)
        if record.get("address") != address:
            raise SecurityError(f"{bank.name} answered for {record.get('address')} when asked "
                                f"for {address}")
        return record
