import pytest

from tchain.digest import digest
from tchain.errors import EncodingError, SignatureError
from tchain.keys import SignatureCache, SigningKey, check_public_key, is_hex, verify
from tchain.model import SignedEntry

DOC = {"type": "payment", "amount": "10"}


def test_signature_verifies_in_its_own_domain():
    key = SigningKey.generate()
    verify(key.public_key, "intent", DOC, key.sign("intent", DOC))


def test_signature_for_one_domain_never_verifies_as_another():
    key = SigningKey.generate()
    sig = key.sign("intent", DOC)
    for other in ("entry", "request", "record", "document"):
        with pytest.raises(SignatureError):
            verify(key.public_key, other, DOC, sig)


def test_wrong_key_is_refused():
    key, other = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(SignatureError):
        verify(other.public_key, "intent", DOC, key.sign("intent", DOC))


def test_digest_is_domain_separated_sha256():
    import hashlib

    assert digest("intent", {"a": 1}) == hashlib.sha256(b'tchain/v1/intent\n{"a":1}').digest()


def test_unknown_digest_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        digest("bogus", {})


@pytest.mark.parametrize("key", [
    "00" * 32,                     # identity point: small order
    "01" + "00" * 31,              # the neutral element encoding: small order
    "ec" + "ff" * 30 + "7f",       # non-canonical encoding (y >= p)
    "AB" * 32,                     # upper case hex
    "ab" * 31,                     # too short
])
def test_small_order_and_non_canonical_keys_are_refused(key):
    with pytest.raises(SignatureError):
        check_public_key(key)


def test_malformed_signature_is_refused_not_crashing():
    key = SigningKey.generate()
    for sig in ("zz" * 64, "00" * 63, None, 5):
        with pytest.raises(SignatureError):
            verify(key.public_key, "intent", DOC, sig)


def test_hex_with_a_trailing_newline_is_not_hex():
    """A signature or key is exactly 64 or 128 lowercase hex characters. "<hex>\n" once
    passed ("$" matches before a final newline) and verified (bytes.fromhex skips
    whitespace): a validator would have accepted a document a strict client refuses."""
    key = SigningKey.generate()
    sig = key.sign("intent", DOC)
    verify(key.public_key, "intent", DOC, sig)
    for bad in (sig + "\n", "\n" + sig, sig[:-1] + "\n", sig.upper()):
        assert not is_hex(bad, 128)
        with pytest.raises(SignatureError):
            verify(key.public_key, "intent", DOC, bad)
    with pytest.raises(SignatureError):
        verify(key.public_key + "\n", "intent", DOC, sig)
    assert not is_hex("ab" * 32 + "\n", 64)


def test_an_entry_whose_signature_ends_in_a_newline_is_refused():
    key = SigningKey.generate()
    entry = SignedEntry.sign(key, chain="ab" * 32, height=1, prev="00" * 32, time=1,
                             kind="credit", intent=None, effects=(), evidence=())
    doc = {"entry": entry.doc["entry"], "sig": entry.sig + "\n"}
    SignedEntry.from_dict(entry.doc)  # as signed: fine
    with pytest.raises(EncodingError, match="sig must be 128 lowercase hex"):
        SignedEntry.from_dict(doc)


def test_the_signature_cache_remembers_valid_checks_only_and_stays_bounded():
    key = SigningKey(b"\x07" * 32)
    message_digest = bytes(32)
    sig = key.sign_digest(message_digest)
    cache = SignatureCache(2)
    cache.verify(key.public_key, message_digest, sig)
    assert (key.public_key, message_digest, sig) in cache
    assert cache.ahead(key.public_key, message_digest, sig) == []
    forged = ("0" if sig[0] != "0" else "1") + sig[1:]
    with pytest.raises(SignatureError):
        cache.verify(key.public_key, message_digest, forged)
    assert (key.public_key, message_digest, forged) not in cache
    [(_check, remember)] = cache.ahead(key.public_key, bytes(31) + b"\x01", sig)
    remember()  # check_ahead found it valid
    cache.add(("k", bytes(32), "s"))  # the third: all forgotten, then it
    assert (key.public_key, message_digest, sig) not in cache
    assert ("k", bytes(32), "s") in cache
