"""Key records: a bank's signed statement of which key owns one of its chains.

``{"record": {"address", "account_id", "chain", "validator"}, "sig"}``, signed by the bank as
``record`` (PROTOCOL.md §2, §7): what ``GET /federation`` answers, and what a bank puts beside a
customer's signed intent when it sends it to a peer (a transfer's hold, a take), so the peer
can check the customer's signature without knowing the customer. The record does not make the
bank honest: it makes what the bank claims checkable, and its signature keeps the claim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tchain.digest import digest
from tchain.errors import EncodingError, SignatureError
from tchain.keys import SIGNATURES, Ahead, SigningKey, check_public_key, is_hex
from tchain.values import parse_address, parse_validator_name

__all__ = ["KeyRecord", "make_record", "verify_record"]

_FIELDS = frozenset({"address", "account_id", "chain", "validator"})


def make_record(key: SigningKey, *, address: str, owner: str, chain: str, validator: str
                ) -> dict[str, Any]:
    """A signed record for one address (``record``)."""
    record = {"address": address, "account_id": owner, "chain": chain, "validator": validator}
    return {"record": record, "sig": key.sign("record", record)}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A parsed signed record (its signature checked by :meth:`verify`)."""

    doc: dict[str, Any] = field(repr=False)
    address: str
    owner: str
    chain: str
    validator: str
    digest: bytes = field(repr=False)

    @classmethod
    def from_dict(cls, signed: Any) -> KeyRecord:
        """Check a signed record's shape (not its signature).

        Raises:
            EncodingError: saying what is wrong.
        """
        if not isinstance(signed, dict) or set(signed) != {"record", "sig"}:
            raise EncodingError("a key record is an object with exactly record and sig")
        record = signed["record"]
        if not isinstance(record, dict) or set(record) != _FIELDS:
            raise EncodingError(f"a record has exactly the fields {', '.join(sorted(_FIELDS))}")
        parse_address(record["address"])
        parse_validator_name(record["validator"])
        check_public_key(record["account_id"])
        if not is_hex(record["chain"], 64):
            raise EncodingError(f"record chain must be a chain id (64 hex), got "
                                f"{record['chain']!r}")
        if not is_hex(signed["sig"], 128):
            raise EncodingError("record sig must be 128 lowercase hex characters")
        return cls(signed, record["address"], record["account_id"], record["chain"],
                   record["validator"], digest("record", record))

    def verify(self, key: str) -> None:
        """Check the record is signed by ``key`` (raises SignatureError); once for all the
        copies of a record seen lately (keys.SIGNATURES): a peer sends the same payer's
        record with every payment of that payer."""
        SIGNATURES.verify(key, self.digest, self.doc["sig"])

    def verify_ahead(self, key: str) -> list[Ahead]:
        """The check :meth:`verify` will need, for keys.check_ahead."""
        return SIGNATURES.ahead(key, self.digest, self.doc["sig"])


def verify_record(signed: Any, validator_key: str) -> dict[str, Any]:
    """Check a signed record's shape and its signature by ``validator_key``; return the record.

    Raises:
        EncodingError, SignatureError: saying what is wrong.
    """
    record = KeyRecord.from_dict(signed)
    try:
        record.verify(validator_key)
    except SignatureError as e:
        raise SignatureError(f"the record of {record.address} is not signed by "
                             f"{validator_key}") from e
    return dict(record.doc["record"])
