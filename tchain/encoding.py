"""The one canonical encoder and the one strict parser of protocol JSON.

Every hashed or signed document is hashed as its RFC 8785 (JCS) bytes. Receivers parse strictly,
then re-canonicalize the parsed object: so two parties agree on the bytes whatever whitespace or
key order travelled on the wire. The rules (PROTOCOL.md §1): duplicate keys, NaN, infinities,
floats, and integers outside 0..2^53-1 are refused, because any of them would let two honest
parsers see different documents behind the same signature.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from tchain.errors import EncodingError

__all__ = ["MAX_SAFE_INTEGER", "canonical", "check_value", "parse"]

MAX_SAFE_INTEGER = 2**53 - 1
_MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"JSON constant {name} is not allowed; numbers must be integers")


def _reject_float(text: str) -> Any:
    raise EncodingError(f"number {text} is not an integer; amounts travel as strings")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise EncodingError(f"duplicate key {key!r} in JSON object")
        obj[key] = value
    return obj


def _parse_int(text: str) -> int:
    # Bound the length before int() so a megabyte of digits costs nothing.
    if len(text) > 17:
        raise EncodingError(f"integer {text[:20]}... is outside 0..{MAX_SAFE_INTEGER}")
    value = int(text)
    if not 0 <= value <= MAX_SAFE_INTEGER:
        raise EncodingError(f"integer {text} is outside 0..{MAX_SAFE_INTEGER}")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_float=_reject_float,
    parse_int=_parse_int,
    parse_constant=_reject_constant,
    strict=True,
)


def parse(data: bytes | str) -> Any:
    """Parse strict protocol JSON.

    Args:
        data: UTF-8 bytes (or text) of one JSON value.

    Returns:
        The parsed value: dicts, lists, strings, integers, booleans and None only.

    Raises:
        EncodingError: on invalid UTF-8, invalid JSON, duplicate keys, NaN, floats or
            integers outside 0..2^53-1.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise EncodingError(f"body is not UTF-8: {e.reason} at byte {e.start}") from e
    else:
        text = data
    try:
        value, end = _DECODER.raw_decode(text, _skip_ws(text, 0))
    except json.JSONDecodeError as e:
        raise EncodingError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise EncodingError("JSON nests too deeply") from e
    if _skip_ws(text, end) != len(text):
        raise EncodingError("invalid JSON: extra data after the value")
    check_value(value)
    return value


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def check_value(value: Any, depth: int = 0) -> None:
    """Refuse anything that is not protocol JSON (see module docstring).

    Raises:
        EncodingError: naming the offending value.
    """
    if depth > _MAX_DEPTH:
        raise EncodingError(f"JSON nests deeper than {_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not 0 <= value <= MAX_SAFE_INTEGER:
            raise EncodingError(f"integer {value} is outside 0..{MAX_SAFE_INTEGER}")
        return
    if isinstance(value, float):
        raise EncodingError(f"number {value!r} is not an integer; amounts travel as strings")
    if isinstance(value, list | tuple):
        for item in value:
            check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"object key {key!r} is not a string")
            check_value(item, depth + 1)
        return
    raise EncodingError(f"{type(value).__name__} is not a JSON value")


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical bytes of a protocol JSON value.

    Raises:
        EncodingError: if the value holds anything protocol JSON refuses.
    """
    check_value(value)
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as e:  # e.g. lone surrogates in strings
        raise EncodingError(f"cannot canonicalize: {e}") from e
