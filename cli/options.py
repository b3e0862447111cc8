"""Helpers shared by the command modules: ``--json`` and the passphrase."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["json_option", "passphrase"]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(f: F) -> F:
    """Add ``--json`` to a command; it sets ``ctx.obj["json"]``."""
    def set_json(ctx: click.Context, _param: Any, value: bool) -> None:
        if value:
            ctx.ensure_object(dict)["json"] = True
    return click.option("--json", "as_json", is_flag=True, expose_value=False,
                        callback=set_json, help="Print JSON for scripts.")(f)


def passphrase(confirm: bool = False) -> str:
    """The wallet passphrase: ``TCHAIN_PASSPHRASE`` if set, else a hidden prompt."""
    env = os.environ.get("TCHAIN_PASSPHRASE")
    if env is not None:
        return env
    return str(click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))
