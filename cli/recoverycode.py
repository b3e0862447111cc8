"""The recovery code: the secret part of a customer's KYC record.

A KYC record that names only a person can be guessed by anyone who knows the address, and
with it a stranger could ask the bank for the chain (found by the third outside attacker).
So the wallet adds 128 random bits at registration and shows them once, for the customer to
keep away from the wallet: with the legal name they are what a recovery shows (PROTOCOL §3).
"""

from __future__ import annotations

import base64
import secrets

from tchain.rules import RECOVERY_CODE_MIN

__all__ = ["new_recovery_code", "readable", "typed_code"]

_GROUP = 4


def new_recovery_code() -> str:
    """128 random bits in base32, 26 characters without padding."""
    code = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
    assert len(code) >= RECOVERY_CODE_MIN
    return code


def readable(code: str) -> str:
    """The code in groups of four, as it is printed to be written down."""
    return "-".join(code[i:i + _GROUP] for i in range(0, len(code), _GROUP))


def typed_code(text: str) -> str:
    """The code as the customer typed it back: any case, with or without dashes and spaces."""
    return "".join(text.split()).replace("-", "").upper()
