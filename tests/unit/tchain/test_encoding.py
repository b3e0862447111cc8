import re
from pathlib import Path

import hypothesis
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from tchain.encoding import (
    MAX_SAFE_INTEGER,
    canonical,
    encode_scalar,
    envelope,
    leading,
    parse,
    splice,
)
from tchain.errors import EncodingError
from tchain.messages import Message
from tchain.model import SignedEntry, SignedIntent


def test_canonical_sorts_keys_and_drops_whitespace():
    assert canonical(parse(b' { "b" : 1, "a" : [true, null, "x"] } ')) == \
        b'{"a":[true,null,"x"],"b":1}'


def test_canonical_keeps_unicode_as_utf8():
    assert canonical({"memo": "caf\u00e9 \u20ac"}) == '{"memo":"café €"}'.encode()


@pytest.mark.parametrize("body", [
    b'{"a": 1, "a": 2}',
    b'{"x": {"k": 1, "k": 1}}',
])
def test_rejects_duplicate_keys(body):
    with pytest.raises(EncodingError, match="duplicate key"):
        parse(body)


@pytest.mark.parametrize("body", [b'{"amount": 1.5}', b'[1e3]', b'[0.0]', b'[-0.5]'])
def test_rejects_floats(body):
    with pytest.raises(EncodingError, match="not an integer"):
        parse(body)


@pytest.mark.parametrize("body", [b"[NaN]", b"[Infinity]", b"[-Infinity]"])
def test_rejects_nan_and_infinity(body):
    with pytest.raises(EncodingError, match="not allowed"):
        parse(body)


@pytest.mark.parametrize("body", [b"[-1]", str(MAX_SAFE_INTEGER + 1).encode(),
                                  b"[" + b"9" * 400 + b"]"])
def test_rejects_integers_outside_safe_range(body):
    with pytest.raises(EncodingError, match="outside"):
        parse(body)


def test_accepts_the_largest_safe_integer():
    assert parse(str(MAX_SAFE_INTEGER).encode()) == MAX_SAFE_INTEGER


@pytest.mark.parametrize("body", [b"\xff\xfe", b'{"a":1} x', b"", b'{"a":'])
def test_rejects_invalid_utf8_and_json(body):
    with pytest.raises(EncodingError):
        parse(body)


def test_canonical_refuses_floats_and_negative_integers():
    for value in ({"a": 0.5}, {"a": -1}, [float("nan")]):
        with pytest.raises(EncodingError):
            canonical(value)


def test_deep_nesting_is_refused_not_crashing():
    with pytest.raises(EncodingError):
        parse(b"[" * 5000 + b"]" * 5000)


def test_nesting_is_refused_past_64_levels_and_many_shallow_brackets_are_not_nesting():
    assert parse(b"[" * 65 + b"]" * 65) is not None  # the 65th list is at level 64
    with pytest.raises(EncodingError, match="nests deeper than 64"):
        parse(b"[" * 66 + b"]" * 66)
    with pytest.raises(EncodingError, match="nests deeper than 64"):
        parse(b'{"a":' * 65 + b"0" + b"}" * 65)
    wide = b"[" + b",".join([b"[]"] * 200) + b"]"  # 201 brackets, two levels
    assert len(parse(wide)) == 200
    assert parse(b'{"a":"' + b"[{" * 100 + b'"}') == {"a": "[{" * 100}


@pytest.mark.parametrize("kind", [{}, [], ["payment"], 1, None])
def test_a_type_or_kind_that_is_not_a_string_is_an_encoding_error(kind):
    """Found by schemathesis: an object as an intent's type raised TypeError (a 500)."""
    intent = {"intent": {"type": kind, "chain": "00" * 32, "seq": 1, "time": 0, "body": {}},
              "sig": "00" * 64}
    entry = {"entry": {"chain": None, "height": 0, "prev": "00" * 32, "time": 0, "kind": kind,
                       "intent": None, "effects": [], "evidence": [], "validator": "00" * 32},
             "sig": "00" * 64}
    message = {"message": {"type": kind, "from": "a.example", "to": "b.example", "time": 0},
               "sig": "00" * 64}
    for parse_doc, doc in ((SignedIntent.from_dict, intent), (SignedEntry.from_dict, entry),
                           (Message.from_dict, message)):
        with pytest.raises(EncodingError):
            parse_doc(doc)


# Protocol JSON as hypothesis draws it: every code point (surrogates included, which only the
# reference encoder may refuse), keys that sort differently by code point and by UTF-16 code
# unit (U+E000..U+FFFF against U+10000 and up), and every control character.
_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=8)
_KEYS = st.one_of(_TEXT, st.sampled_from(["\ue000", "\uffff", "\U00010000", "\U0001f600",
                                          "a\ue000", "a\U00010000", "\x7f", "\u2028"]))


def _documents(text, keys):
    """Protocol JSON documents with strings from ``text`` and object keys from ``keys``."""
    return st.recursive(
        st.none() | st.booleans() | st.integers(0, MAX_SAFE_INTEGER) | text,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=20)


_JSON = _documents(_TEXT, _KEYS)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_canonical_writes_the_bytes_of_the_reference_rfc8785_encoder(value):
    try:
        reference = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError):  # a lone surrogate
        with pytest.raises(EncodingError):
            canonical(value)
        return
    assert canonical(value) == reference


# Below U+D800 the fast encoder writes the bytes itself; drawn from every code point, most
# strings would hold one from U+D800 up and go to the reference encoder. So the fast path is
# drawn alone too: controls, ASCII, and the rest of the range below U+D800.
_LOW_TEXT = st.text(st.characters(max_codepoint=0xD7FF), max_size=10)
_LOW_JSON = _documents(_LOW_TEXT, _LOW_TEXT)


@settings(max_examples=400, deadline=None)
@given(_LOW_JSON)
def test_below_u_d800_the_fast_encoder_writes_the_reference_bytes(value):
    assert canonical(value) == rfc8785.dumps(value)


def test_keys_beyond_the_bmp_sort_by_utf16_code_units_as_rfc8785_asks():
    # By code point U+FB01 < U+1F600; by UTF-16 code units 0xD83D < 0xFB01: JCS puts the
    # emoji first.
    assert canonical({"\ufb01": 1, "\U0001f600": 2}) == \
        '{"\U0001f600":2,"\ufb01":1}'.encode()


@pytest.mark.parametrize("body", [b'{"\\ud800": 1}', b'{"a": "x\\udfff"}',
                                  b'[{"b": ["\\uDBFF"]}]', b'"\\ud83d\\u0041"'])
def test_a_lone_surrogate_is_refused_when_parsed(body):
    """Found by the outside attacker: a key \\ud800 in any request's body answered 500 (the
    error's own message could not be written); a lone surrogate is no Unicode text."""
    with pytest.raises(EncodingError, match="lone surrogate"):
        parse(body)
    assert parse(b'"\\ud83d\\ude00"') == "\U0001f600"  # a pair is one character


def test_a_lone_surrogate_in_a_built_key_is_an_encoding_error_not_a_crash():
    with pytest.raises(EncodingError, match="cannot canonicalize"):
        canonical({"\ud800": 1})


@settings(max_examples=500, deadline=None)
@given(st.none() | st.booleans() | st.integers(-(2**60), 2**60) | _TEXT |
       st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7f), max_size=12) |
       st.sampled_from(['a"b', "a\\b", "x\x7f", "\t", "bank1.example", "é"]))
def test_a_plain_scalar_is_written_as_the_reference_encoder_writes_it(value):
    """encode_scalar writes a plain value without the encoder (in messages); anything it is
    not sure of (escapes, non-ASCII, integers out of range) it leaves to the encoder."""
    made = encode_scalar(value)
    if made is not None:
        assert made == rfc8785.dumps(value)
        assert parse(made) == value
    if isinstance(value, str) and value.isascii() and value.isprintable() and \
            '"' not in value and "\\" not in value:
        assert made is not None
    if type(value) is int and not 0 <= value <= MAX_SAFE_INTEGER:
        assert made is None


# --- documents put together from parts already encoded (splice, envelope, leading) -------------

def _pre_encode(value, choose):
    """``value`` with some of its parts (chosen by ``choose``) replaced by their canonical
    bytes, as a signed entry holds its intent's ``raw``."""
    if choose():
        return canonical(value)
    if isinstance(value, dict):
        return {key: _pre_encode(item, choose) for key, item in value.items()}
    if isinstance(value, list):
        return [_pre_encode(item, choose) for item in value]
    return value


def _encodable(value) -> bool:
    try:
        rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError):  # a lone surrogate
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(_JSON, st.randoms(use_true_random=False))
def test_spliced_parts_make_the_reference_bytes_of_the_whole(value, random):
    hypothesis.assume(_encodable(value))
    spliced = _pre_encode(value, lambda: random.random() < 0.3)
    assert splice(spliced) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(_LOW_JSON, st.randoms(use_true_random=False))
def test_spliced_parts_below_u_d800_make_the_reference_bytes(value, random):
    spliced = _pre_encode(value, lambda: random.random() < 0.3)
    assert splice(spliced) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from(["intent", "entry", "message", "record"]),
       st.binary(min_size=64, max_size=64))
def test_an_envelope_is_the_reference_bytes_of_the_signed_document(value, name, sig):
    hypothesis.assume(_encodable(value))
    assert envelope(name, canonical(value), sig.hex()) == \
        rfc8785.dumps({name: value, "sig": sig.hex()})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_LOW_TEXT.filter(lambda k: k != "status"), _LOW_JSON, max_size=4),
       st.integers(100, 599))
def test_a_leading_field_comes_first_and_the_rest_as_they_were(value, status):
    made = leading("status", status, canonical(value))
    assert made.startswith(b'{"status":' + str(status).encode() + (b"," if value else b"}"))
    assert parse(made) == {"status": status, **value}


# --- canonical bytes are put together in tchain/encoding.py only ------------------------------

ROOT = Path(__file__).parents[3]
# JSON written by hand: a bytes literal that opens or closes an object or array, or holds a
# key ('"name":'); an orjson call; json.dumps (but for files and text that are not protocol
# JSON, each listed with why).
_HAND_MADE = re.compile(r"""(?<!\w)b'(?:[{\[\]},]|[^']*":)"""
                        r"""|(?<!\w)b"(?:[{\[\]},]|(?:[^"\\]|\\.)*\\":)"""
                        r"|orjson\.|json\.dumps")
_NOT_PROTOCOL_JSON = {
    "cli/bench.py": "a figure printed for people",
    "cli/client.py": "a bank's answer quoted in an error message",
    "cli/output.py": "what the CLI prints",
    "cli/wallet.py": "the wallet file",
    "federation/stellar.py": "TOML strings of stellar.toml",
    "validator/config.py": "the data directory's config file",
}


def test_no_canonical_bytes_are_put_together_outside_the_encoder():
    found = []
    for folder in ("tchain", "validator", "federation", "cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name == "tchain/encoding.py":
                continue
            for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                for match in _HAND_MADE.finditer(line):
                    if match.group() == "json.dumps" and name in _NOT_PROTOCOL_JSON:
                        continue
                    found.append(f"{name}:{n}: {line.strip()}")
    assert found == [], "canonical bytes are made by tchain.encoding (splice, envelope...)"


def test_the_grep_for_hand_made_bytes_finds_them():
    for line in ("raw = b'{\"entry\":' + body", 'b"{" + b",".join(parts) + b"}"',
                 "orjson.dumps(value)", "json.dumps(doc).encode()", "b'],\"flow\":' + s",
                 'b"\\"sig\\":" + sig'):
        assert _HAND_MADE.search(line), line
    for line in ('raise EncodingError("a body is a JSON object {...}")',
                 'if name == b"content-type":', '("bob", "50000", GBP)'):
        assert not _HAND_MADE.search(line), line
