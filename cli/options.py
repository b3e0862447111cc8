"""Helpers shared by the command modules: ``--json``, the operator's ``--data`` and the
passphrase."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

__all__ = ["ByteSize", "data_option", "json_option", "passphrase"]

F = TypeVar("F", bound=Callable[..., Any])


data_option = click.option("--data", required=True, envvar="TCHAIN_DATA",
                           type=click.Path(file_okay=False, path_type=Path),
                           help="The bank's data directory [env TCHAIN_DATA].")


def json_option(f: F) -> F:
    """Add ``--json`` to a command; it sets ``ctx.obj["json"]``."""
    def set_json(ctx: click.Context, _param: Any, value: bool) -> None:
        if value:
            ctx.ensure_object(dict)["json"] = True
    return click.option("--json", "as_json", is_flag=True, expose_value=False,
                        callback=set_json, help="Print JSON for scripts.")(f)


class ByteSize(click.ParamType):
    """A size in bytes: ``1048576``, ``512K``, ``64M``, ``2G`` (powers of 1024), at least 64K."""

    name = "size"
    _UNITS: ClassVar[dict[str, int]] = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30,
                                        "T": 1 << 40}
    MINIMUM = 64 << 10

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B")
        number, unit = text.rstrip("KMGT"), text[len(text.rstrip("KMGT")):]
        if not number.isdigit() or unit not in self._UNITS:
            self.fail(f"{value!r} is not a size like 1048576, 512K, 64M or 2G", param, ctx)
        size = int(number) * self._UNITS[unit]
        if size < self.MINIMUM:
            self.fail(f"{value!r} is smaller than the 64K a store needs", param, ctx)
        return size


def passphrase(confirm: bool = False) -> str:
    """The wallet passphrase: ``TCHAIN_PASSPHRASE`` if set, else a hidden prompt."""
    env = os.environ.get("TCHAIN_PASSPHRASE")
    if env is not None:
        return env
    return str(click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))
