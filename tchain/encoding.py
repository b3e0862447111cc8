"""The one canonical encoder and the one strict parser of protocol JSON.

Every hashed or signed document is hashed as its RFC 8785 (JCS) bytes. Receivers parse strictly,
then re-canonicalize the parsed object: so two parties agree on the bytes whatever whitespace or
key order travelled on the wire. The rules (PROTOCOL.md §1): duplicate keys, NaN, infinities,
floats, and integers outside 0..2^53-1 are refused, because any of them would let two honest
parsers see different documents behind the same signature.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import rfc8785

from tchain.errors import EncodingError

__all__ = ["MAX_SAFE_INTEGER", "canonical", "check_value", "encode_built", "encode_scalar",
           "envelope", "leading", "parse", "parse_own", "splice"]

MAX_SAFE_INTEGER = 2**53 - 1
_MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"JSON constant {name} is not allowed; numbers must be integers")


def _reject_float(text: str) -> Any:
    raise EncodingError(f"number {text} is not an integer; amounts travel as strings")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)  # in C; a key seen twice leaves the dict shorter than the pairs
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise EncodingError(f"duplicate key {key!r} in JSON object")
            seen.add(key)
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
        what = e.msg.removesuffix(" at")  # some of the decoder's messages end in "at"
        raise EncodingError(f"invalid JSON: {what} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise EncodingError("JSON nests too deeply") from e
    if _skip_ws(text, end) != len(text):
        raise EncodingError("invalid JSON: extra data after the value")
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(value)
    # The decoder's hooks have refused floats, constants and integers out of range, and JSON
    # keys are strings: of check_value's rules only the depth is left, and a text with at
    # most _MAX_DEPTH brackets cannot nest deeper (counted in C; brackets inside strings
    # only make the count larger). The walk was a third of a parse (docs/performance.md).
    if text.count("{") + text.count("[") > _MAX_DEPTH:
        check_value(value)
    return value


# A \uD800-\uDFFF escape: JSON lets a text spell half of a UTF-16 pair alone, which is no
# Unicode character at all; a pair the decoder joined into one character is fine.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_lone_surrogates(value: Any) -> None:
    """Refuse a string or key holding a lone surrogate (PROTOCOL.md §1: strings are UTF-8,
    and a lone surrogate has no UTF-8 form, so no two parties could agree on its bytes)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise EncodingError("a string holds a lone surrogate (\\ud800-\\udfff "
                                    "without its pair), which is not Unicode text") from e


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def check_value(value: Any, depth: int = 0) -> None:
    """Refuse anything that is not protocol JSON (see module docstring).

    Strings, the most common leaves, are passed over without a call: this walk runs over every
    document canonicalized, so it is on every payment's path.

    Raises:
        EncodingError: naming the offending value.
    """
    if depth > _MAX_DEPTH:
        raise EncodingError(f"JSON nests deeper than {_MAX_DEPTH} levels")
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise EncodingError(f"object key {key!r} is not a string")
            if type(item) is not str:
                check_value(item, depth + 1)
    elif kind is list or kind is tuple:
        for item in value:
            if type(item) is not str:
                check_value(item, depth + 1)
    elif kind is int:
        if not 0 <= value <= MAX_SAFE_INTEGER:
            raise EncodingError(f"integer {value} is outside 0..{MAX_SAFE_INTEGER}")
    elif not (value is None or kind is str or kind is bool):
        if isinstance(value, float):
            raise EncodingError(f"number {value!r} is not an integer; amounts travel as strings")
        raise EncodingError(f"{kind.__name__} is not a JSON value")


# For protocol JSON (strings, safe integers, booleans, null, arrays, objects) orjson writes
# exactly the RFC 8785 bytes, as long as no string holds a code point from U+D800 up: below it,
# sorting keys by code point equals JCS's sorting by UTF-16 code units, and the escapes are the
# same (\b \f \n \r \t, other controls as lowercase \u00xx, nothing else escaped). Anything
# from U+D800 up (in UTF-8: a lead byte ED A0..BF, or EE and above) takes the reference encoder,
# rfc8785, which sorts by UTF-16 and refuses lone surrogates. orjson, not the standard library's
# encoder, because it writes a document about six times as fast, and a payment writes several.
# tests/unit/tchain/test_encoding.py holds the two to the same bytes over generated documents.
_FAST_OPTIONS = orjson.OPT_SORT_KEYS
_NEEDS_REFERENCE = re.compile(b"\xed[\xa0-\xbf]|[\xee-\xf4]")


def canonical(value: Any) -> bytes:
    """The RFC 8785 canonical bytes of a protocol JSON value.

    Raises:
        EncodingError: if the value holds anything protocol JSON refuses.
    """
    check_value(value)
    return encode_built(value)


def encode_built(value: Any) -> bytes:
    """The canonical bytes of a value this package built from parts already checked (a signed
    entry around a parsed intent, a chain state): :func:`canonical` without the walk that
    refuses non-protocol values, which such a value cannot hold.

    Raises:
        EncodingError: a string holds a lone surrogate, or a part is not JSON at all (a key
            that is not a string, say: a bug in the builder), as the reference encoder says.
    """
    try:
        raw = orjson.dumps(value, option=_FAST_OPTIONS)
    except orjson.JSONEncodeError:  # a lone surrogate or a non-JSON value: rfc8785 says which
        raw = None
    if raw is not None and (raw.isascii() or not _NEEDS_REFERENCE.search(raw)):
        return raw
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError) as e:
        raise EncodingError(f"cannot canonicalize: {e}") from e


def encode_scalar(value: Any) -> bytes | None:
    """The canonical bytes of a plain scalar, made without the encoder; None for anything
    else (then encode it whole). Plain: a safe integer, a boolean, null, or a printable ASCII
    string without a quote or a backslash (nothing in it for JCS to escape). A message's
    names, times and ids are all plain: encoding each alone cost more in the encoder's
    set-up than in the work."""
    kind = type(value)
    if kind is str:
        text: str = value
        if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
            return b'"' + text.encode("ascii") + b'"'
        return None
    if kind is int:
        return str(value).encode("ascii") if 0 <= value <= MAX_SAFE_INTEGER else None
    if kind is bool:
        return b"true" if value else b"false"
    return b"null" if value is None else None


# --- documents put together from parts already encoded ----------------------------------------
#
# A signed entry holds a signed intent and other signed entries; a peer message holds entries.
# Each part was encoded (and its bytes hashed) when it was parsed or signed: encoding the whole
# again would cost most of a payment's encoding. So the parts' bytes are spliced in, here and
# only here; tests/unit/tchain/test_encoding.py holds what this makes to the reference
# encoder's bytes of the whole document.

_KEYS: dict[str, bytes] = {}  # the encoded names of object keys met lately (a few dozen)


def _key(name: str) -> bytes:
    encoded = _KEYS.get(name)
    if encoded is None:
        encoded = encode_scalar(name) or encode_built(name)
        if len(_KEYS) < 1024:
            _KEYS[name] = encoded
    return encoded


def _utf16(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _fragment(value: Any) -> orjson.Fragment:
    if type(value) is bytes:
        return orjson.Fragment(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def splice(value: Any) -> bytes:
    """The canonical bytes of a value built from checked parts, some of them already encoded:
    a ``bytes`` leaf is taken to be the canonical bytes of one JSON value (a signed entry's
    ``raw``, say) and put in as it is; everything else is encoded as :func:`encode_built`
    would. Keys are sorted as RFC 8785 sorts them, by UTF-16 code units.

    Raises:
        EncodingError: as :func:`encode_built`.
    """
    try:  # the parts in as orjson fragments: one call in C, as fast as joining them by hand
        raw = orjson.dumps(value, default=_fragment, option=_FAST_OPTIONS)
    except orjson.JSONEncodeError:
        raw = None
    if raw is not None and (raw.isascii() or not _NEEDS_REFERENCE.search(raw)):
        return raw
    return _splice(value)


def _splice(value: Any) -> bytes:
    """:func:`splice` by hand, for what orjson may not write as RFC 8785 does (a code point
    from U+D800 up, in the parts or around them)."""
    kind = type(value)
    if kind is bytes:
        return value  # type: ignore[no-any-return]
    if kind is dict:
        keys = sorted(value)
        if not all(name.isascii() for name in keys):
            keys.sort(key=_utf16)
        return b"{" + b",".join([_key(name) + b":" + _splice(value[name]) for name in keys]) \
            + b"}"
    if kind is list or kind is tuple:
        return b"[" + b",".join([_splice(item) for item in value]) + b"]"
    return encode_scalar(value) or encode_built(value)


def envelope(name: str, document: bytes, sig: str) -> bytes:
    """The canonical bytes of a signed document ``{name: document, "sig": sig}`` from the
    document's canonical bytes: what :func:`splice` makes of it, without its walk (every
    intent and entry parsed or signed makes one). ``name`` sorts before ``sig`` (intent,
    entry, message, record) and ``sig`` is hex, so the order and the escapes are fixed."""
    return b'{"' + name.encode("ascii") + b'":' + document + b',"sig":"' + \
        sig.encode("ascii") + b'"}'


def leading(name: str, value: Any, document: bytes) -> bytes:
    """An encoded object with the field ``name`` put in front of the others: not canonical
    (its keys out of order), for answers that are read, never signed or hashed (a batch
    result's ``status`` leads, docs/protocol.md §7). ``document`` is an encoded object."""
    rest = document[1:]
    return b"{" + _key(name) + b":" + splice(value) + (b"," + rest if rest != b"}" else rest)


def parse_own(data: bytes) -> Any:
    """Parse JSON this package wrote itself (a record read back from our own store), without
    the protocol's limits: such a record may hold what no protocol document does (a sum over
    many chains past 2^53)."""
    return orjson.loads(data)
