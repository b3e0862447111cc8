"""The small value types of the protocol: amounts, names, addresses and UAIs.

Each parser takes what came off the wire and either returns a clean Python value or raises
:class:`EncodingError` naming what it got and what it expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tchain.errors import EncodingError

__all__ = [
    "MAX_AMOUNT",
    "UAI",
    "parse_address",
    "parse_amount",
    "parse_delta",
    "parse_name",
    "parse_positive_amount",
    "parse_validator_name",
]

# Matched whole (fullmatch): "^...$" let "100\n" through, as "$" matches before a final
# newline (and int() then read it as 100).
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,37})")
MAX_AMOUNT = 10**38 - 1  # the most an amount of 38 digits says; no balance may pass it
_DELTA = re.compile(r"(0|-?[1-9][0-9]{0,37})")
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_VALIDATOR = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_CODE = re.compile(r"[A-Z0-9]{1,12}")


def parse_amount(value: Any, what: str = "amount") -> int:
    """A non-negative amount in minor units, given as a base-10 string (PROTOCOL.md §1)."""
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
        raise EncodingError(f"{what} must be a string of digits like \"1050\" "
                            f"(no sign, no leading zeros, at most 38 digits), got {value!r}")
    return int(value)


def parse_positive_amount(value: Any, what: str = "amount") -> int:
    """An amount that must move something: at least 1 minor unit."""
    amount = parse_amount(value, what)
    if amount == 0:
        raise EncodingError(f"{what} must be at least 1, got \"0\"")
    return amount


def parse_delta(value: Any, what: str = "delta") -> int:
    """A signed change of a balance, given as a base-10 string that may start with ``-``."""
    if not isinstance(value, str) or not _DELTA.fullmatch(value):
        raise EncodingError(f"{what} must be a signed string of digits like \"-1050\", "
                            f"got {value!r}")
    return int(value)


def parse_name(value: Any) -> str:
    """A customer name at a bank (the part before ``*`` in an address)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise EncodingError("name must be 1..64 of lowercase letters, digits, '.', '_' or '-', "
                            f"starting and ending with a letter or digit, got {value!r}")
    return value


def parse_validator_name(value: Any) -> str:
    """A validator (bank) name: a lowercase DNS name like ``bank1.example``."""
    if not isinstance(value, str) or len(value) > 253 or not _VALIDATOR.fullmatch(value):
        raise EncodingError(f"validator name must be a lowercase DNS name like "
                            f"\"bank1.example\", got {value!r}")
    return value


def parse_address(value: Any) -> tuple[str, str]:
    """Split ``alice*bank1.example`` into ``("alice", "bank1.example")``.

    A bank's own chain is addressed by the bare bank name; that returns ``("", name)``.
    """
    if not isinstance(value, str):
        raise EncodingError(f"address must be a string like \"alice*bank1.example\", "
                            f"got {value!r}")
    if "*" not in value:
        return "", parse_validator_name(value)
    name, _, validator = value.partition("*")
    return parse_name(name), parse_validator_name(validator)


@dataclass(frozen=True, slots=True)
class UAI:
    """A unified asset identifier, ``<issuer>:<CODE>`` (PROTOCOL.md §3).

    The issuer is a validator name (``bank1.example:USD``, a bank's IOU) or a customer address
    (``alice*bank1.example:POINTS``, an owner-issued asset).
    """

    issuer: str
    code: str

    @classmethod
    def parse(cls, value: Any) -> UAI:
        if not isinstance(value, str) or value.count(":") != 1:
            raise EncodingError(f"asset must be a UAI like \"bank1.example:USD\", got {value!r}")
        issuer, code = value.split(":")
        if not _CODE.fullmatch(code):
            raise EncodingError(f"asset code must be 1..12 of A-Z and 0-9, got {code!r}")
        parse_address(issuer)
        return cls(issuer, code)

    @property
    def is_bank_iou(self) -> bool:
        """Issued by a bank itself (not by one of its customers)."""
        return "*" not in self.issuer

    @property
    def issuer_validator(self) -> str:
        """The validator name that answers for this asset's issuer."""
        return self.issuer.partition("*")[2] or self.issuer

    def __str__(self) -> str:
        return f"{self.issuer}:{self.code}"
