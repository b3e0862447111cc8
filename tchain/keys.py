"""Ed25519 keys and signatures over domain-separated digests (PROTOCOL.md §2).

A signature is Ed25519 over the 32 digest bytes. PyNaCl's exceptions stop here: callers see
:class:`SignatureError` only.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import nacl.bindings
import nacl.exceptions
import nacl.signing

from tchain.digest import digest
from tchain.errors import SignatureError

__all__ = ["SIGNATURES", "Ahead", "Check", "SignatureCache", "SigningKey", "Verified",
           "check_ahead", "check_public_key", "is_hex", "valid_signatures", "verify",
           "verify_digest"]

T = TypeVar("T")

# fullmatch, not ^...$: "$" also matches before a final newline, and bytes.fromhex skips
# whitespace, so "<hex>\n" passed for a signature and verified.
_HEX = {n: re.compile(rf"[0-9a-f]{{{n}}}") for n in (64, 128)}


def is_hex(value: Any, length: int) -> bool:
    """Whether ``value`` is a lowercase hex string of exactly ``length`` characters."""
    return isinstance(value, str) and bool(_HEX[length].fullmatch(value))


def check_public_key(public_key: Any) -> bytes:
    """Return the 32 key bytes of a usable Ed25519 public key given as hex.

    Refuses keys that are not 64 lowercase hex characters, not a canonical curve point, or of
    small order: a small-order key makes signatures that verify for many messages.

    Raises:
        SignatureError: saying what was received.
    """
    if not is_hex(public_key, 64):
        raise SignatureError(f"public key must be 64 lowercase hex characters, got {public_key!r}")
    raw = bytes.fromhex(public_key)
    if public_key in _VALID_KEYS:
        return raw
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(raw):
        raise SignatureError(f"public key {public_key} is not a valid Ed25519 point "
                             "(non-canonical or of small order)")
    _VALID_KEYS.add(public_key)
    return raw


class Verified(Generic[T]):
    """What was found valid lately: a bounded set, forgotten all at once when full (there is
    no order worth keeping). Only what passed its check goes in, so finding it here stands
    for the check. The one cache of checks in the core: of signatures (:data:`SIGNATURES`)
    and of keys' points."""

    __slots__ = ("_items", "_kept")

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._items: set[T] = set()

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def add(self, item: T) -> None:
        """Remember ``item`` as found valid."""
        if len(self._items) >= self._kept:
            self._items.clear()
        self._items.add(item)


# A signature check: (public key in hex, the 32 digest bytes, the signature in hex).
Check = tuple[str, bytes, str]


class SignatureCache(Verified[Check]):
    """Signature checks found valid lately, whatever object carried them: a signed intent
    checked ahead of the write transaction, a peer's record of a payer that comes with every
    payment of that payer, an entry met again in evidence. A signature check is the dearest
    part of taking a payment; a hit here costs a set lookup."""

    __slots__ = ()

    def verify(self, public_key: str, message_digest: bytes, signature: str) -> None:
        """:func:`verify_digest`, once for each check.

        Raises:
            SignatureError: when the signature is malformed or does not verify.
        """
        check = (public_key, message_digest, signature)
        if check not in self._items:
            verify_digest(public_key, message_digest, signature)
            self.add(check)

    def ahead(self, public_key: str, message_digest: bytes, signature: str) -> list[Ahead]:
        """The check :meth:`verify` will need, for :func:`check_ahead`: none if made."""
        check = (public_key, message_digest, signature)
        if check in self._items:
            return []
        return [(check, lambda: self.add(check))]


# Keys found valid lately: the point check costs as much as a signature check, and a bank
# meets the same keys again and again (its customers, its peers' payers).
_VALID_KEYS: Verified[str] = Verified(4096)
# Signatures found valid lately (16384 checks: a few MB; a batch of 1000 intents and the
# messages of a busy peer fit many times over).
SIGNATURES = SignatureCache(16384)


def verify_digest(public_key: str, message_digest: bytes, signature: Any) -> None:
    """Check an Ed25519 signature over a 32-byte digest.

    Raises:
        SignatureError: when the signature is malformed or does not verify.
    """
    if not is_hex(signature, 128):
        raise SignatureError(f"signature must be 128 lowercase hex characters, got {signature!r}")
    if not is_hex(public_key, 64):
        raise SignatureError(f"public key must be 64 lowercase hex characters, got {public_key!r}")
    try:  # the binding itself: no key object built per call (this is on every payment)
        nacl.bindings.crypto_sign_open(bytes.fromhex(signature) + message_digest,
                                       bytes.fromhex(public_key))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as e:
        raise SignatureError(f"signature does not verify under key {public_key}") from e


PARALLEL_FROM = 32  # signatures worth spreading over the cores
CORES = os.cpu_count() or 1  # read once: each call reads /sys


def valid_signatures(signatures: Sequence[tuple[str, bytes, str]]) -> list[bool]:
    """Whether each (public key, digest, signature) verifies: on every core when there are
    many. PyNaCl lets go of the GIL inside each check, and threads that do nothing else
    between checks hardly wait for it (a thread running the rules meanwhile would: it holds
    the GIL for long stretches)."""
    workers = CORES
    if workers == 1 or len(signatures) < PARALLEL_FROM:
        return _valid(signatures)
    step = -(-len(signatures) // workers)
    parts = _pool(workers).map(_valid, [signatures[i:i + step]
                                        for i in range(0, len(signatures), step)])
    return [ok for part in parts for ok in part]


# A signature to check ahead of its use, (key, digest, signature), and what to do if it is valid
# (remember it on what it signs, so that the check there is free).
Ahead = tuple[tuple[str, bytes, str], Callable[[], None]]


def check_ahead(checks: Sequence[Ahead]) -> None:
    """Check many signatures at once (valid_signatures) and remember each valid one; an
    invalid one is left to the ordinary check, which refuses it with its message."""
    valid = valid_signatures([signature for signature, _ in checks])
    for (_, remember), ok in zip(checks, valid, strict=True):
        if ok:
            remember()


def _valid(signatures: Sequence[tuple[str, bytes, str]]) -> list[bool]:
    out = []
    for key, message_digest, sig in signatures:
        try:
            verify_digest(key, message_digest, sig)
            out.append(True)
        except SignatureError:
            out.append(False)
    return out


_pools: dict[int, ThreadPoolExecutor] = {}  # by process: threads do not survive a fork
_pools_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(os.getpid())
        if pool is None:
            pool = _pools[os.getpid()] = ThreadPoolExecutor(workers,
                                                            thread_name_prefix="verify")
        return pool


def verify(public_key: str, kind: str, doc: Any, signature: Any) -> None:
    """Check that ``signature`` is ``public_key``'s signature over ``digest(kind, doc)``.

    Raises:
        SignatureError: when it is not.
    """
    verify_digest(public_key, digest(kind, doc), signature)


class SigningKey:
    """An Ed25519 signing key: the bank's or a customer's.

    Built from a 32-byte seed; the public key is exposed as lowercase hex, the form it takes on
    the wire.
    """

    __slots__ = ("_secret", "_seed", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise SignatureError(f"a signing key seed has 32 bytes, got {len(seed)}")
        public, self._secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        self._seed = bytes(seed)
        self.public_key: str = public.hex()

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key from the operating system's randomness."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed; handle with care."""
        return self._seed

    def sign_digest(self, message_digest: bytes) -> str:
        """Sign 32 digest bytes; return the signature as hex."""
        return nacl.bindings.crypto_sign(message_digest, self._secret)[:64].hex()

    def sign(self, kind: str, doc: Any) -> str:
        """Sign ``digest(kind, doc)``; return the signature as hex."""
        return self.sign_digest(digest(kind, doc))

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key})"
