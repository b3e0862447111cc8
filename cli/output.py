"""Output for people (aligned tables) and for scripts (``--json``). Only the CLI prints."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import click

__all__ = ["emit", "emit_error", "note", "table", "when"]


def when(ms: int) -> str:
    """A time of the protocol (ms since the epoch) as people read it, in UTC."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(ctx: click.Context, data: Any, text: str) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else ``text``."""
    if ctx.obj.get("json"):
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(text)


def emit_error(ctx: click.Context, data: dict[str, Any], text: str) -> None:
    """Print an error on stderr: ``data`` (``{"error": code, "message", ...}``) as one line of
    JSON when ``--json`` was given anywhere on the command line, else ``error: text``."""
    if (ctx.obj or {}).get("json") or ctx.find_root().meta.get("tchain.json"):
        click.echo(json.dumps(data, sort_keys=True), err=True)
    else:
        click.echo(f"error: {text}", err=True)


def note(ctx: click.Context, text: str) -> None:
    """A remark on stderr beside a result (not under ``--json``, whose result says it)."""
    if not ctx.obj.get("json"):
        click.echo(f"note: {text}", err=True)
