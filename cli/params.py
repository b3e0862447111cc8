"""The customer's arguments as click types: a mistake in what was typed is bad usage (exit 2),
said in words about what was typed, before the wallet is opened or a bank asked.

Each type returns the text the protocol takes (an amount stays a string of digits), so the
session's own checks, which stay, see the same value.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

import click

from tchain.errors import EncodingError
from tchain.keys import is_hex
from tchain.values import UAI, parse_address, parse_name, parse_positive_amount

__all__ = ["ADDRESS", "AMOUNT", "ASSET", "BANK_URL", "DAILY_LIMIT", "HEX64", "NAME"]


class _Amount(click.ParamType):
    """A positive whole number of the asset's smallest unit, as the protocol writes it."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        try:
            return str(parse_positive_amount(value))
        except EncodingError:
            self.fail(f"{value!r} is not an amount: write a whole number of the asset's "
                      "smallest unit, at least 1 (cents for USD: 1050 is 10.50)", param, ctx)


class _Asset(click.ParamType):
    """A UAI, ``issuer:CODE``."""

    name = "uai"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        try:
            return str(UAI.parse(value))
        except EncodingError as e:
            self.fail(f"{value!r} is not an asset: write issuer:CODE, like bank1.example:USD "
                      f"({e.message})", param, ctx)


class _Address(click.ParamType):
    """``name*bank``, or a bank's bare name (its own chain). Whether a bare name is a bank's
    can only be known by asking one: the session says so when it is not."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        try:
            parse_address(value)
        except EncodingError as e:
            self.fail(f"{value!r} is not an address like bob*bank1.example: {e.message}",
                      param, ctx)
        return str(value)


class _Name(click.ParamType):
    """The name a customer registers under: the part before ``*`` of the address."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        try:
            return parse_name(value)
        except EncodingError:
            hint = ""
            if isinstance(value, str) and value.lower() != value:
                with contextlib.suppress(EncodingError):
                    hint = f" (try {parse_name(value.lower())!r})"
            self.fail(f"{value!r} cannot be registered: a name is 1 to 64 lowercase letters, "
                      "digits, '.', '_' or '-', beginning and ending with a letter or digit"
                      + hint, param, ctx)


class _BankURL(click.ParamType):
    """A bank's API URL, scheme included."""

    name = "url"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        text = str(value)
        parts = urlsplit(text)
        if parts.scheme in ("http", "https") and parts.hostname:
            return text
        hint = f", like http://{text}" if "://" not in text else ", like http://127.0.0.1:8701"
        self.fail(f"{text!r} is not a bank URL: write it with http:// or https://{hint}",
                  param, ctx)


class _DailyLimit(click.ParamType):
    """``UAI=AMOUNT``, a daily limit."""

    name = "UAI=AMOUNT"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> tuple[str, str]:
        asset, sep, amount = str(value).partition("=")
        if not sep:
            self.fail(f"{value!r} is not UAI=AMOUNT, like bank1.example:USD=50000", param, ctx)
        return ASSET.convert(asset, param, ctx), AMOUNT.convert(amount, param, ctx)


class _Hex64(click.ParamType):
    """32 bytes in lowercase hex: a lock's id, hash or preimage."""

    name = "hex64"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        if not is_hex(value, 64):
            self.fail(f"{value!r} is not 64 lowercase hex characters", param, ctx)
        return str(value)


AMOUNT = _Amount()
ASSET = _Asset()
ADDRESS = _Address()
NAME = _Name()
BANK_URL = _BankURL()
DAILY_LIMIT = _DailyLimit()
HEX64 = _Hex64()
