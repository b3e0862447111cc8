"""Ids as people copy them: any unique prefix of a hex id stands for the id.

The CLI prints entry ids cut to 16 characters (`tchain pay` does), and nobody types 64. A
prefix is resolved only against ids the wallet knows (its own verified entries, the offers it
was shown), never guessed at by the bank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

from cli.errors import BadUsageError

__all__ = ["resolve_prefix"]

T = TypeVar("T")
_HEX = re.compile(r"[0-9a-f]{1,64}")


def resolve_prefix(typed: str, ids: Mapping[str, T], what: str) -> T | None:
    """What the one id that starts with ``typed`` stands for, or None when none does.

    ``what`` names the ids for the errors (``entry``, ``offer``). Ids that stand for the same
    thing count once.

    Raises:
        BadUsageError: ``typed`` is no hex id, or the start of ids that stand for different
            things.
    """
    prefix = typed.lower()
    if not _HEX.fullmatch(prefix):
        raise BadUsageError(f"{typed!r} is not an {what} id: ids are hex, and any start of one "
                            "will do, like the 16 characters `tchain pay` prints")
    found: list[T] = []
    for known, meaning in ids.items():
        if known.startswith(prefix) and meaning not in found:
            found.append(meaning)
    if len(found) > 1:
        plural = "entries" if what == "entry" else f"{what}s"
        raise BadUsageError(f"{typed} matches {len(found)} of your {plural}: type more of the "
                            "id")
    return found[0] if found else None
