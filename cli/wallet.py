"""The wallet: an encrypted Ed25519 key and a local, verified copy of the customer's chain.

The key is sealed with a key derived from the passphrase by argon2id (``nacl.pwhash``) in a
SecretBox. The chain copy is a file of signed entries, one canonical JSON per line, written as
entries are verified: it is what lets the wallet notice a bank that rewrites history. Both files
are written whole (cli.atomic), by one command at a time (cli.walletlock).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from cli.atomic import write_atomically
from cli.errors import WalletError
from tchain.keys import SigningKey

__all__ = ["BankInfo", "PendingKey", "Wallet", "default_wallet_path", "seal"]

_KDF = nacl.pwhash.argon2id
WALLET_VERSION = 1


class _Shape(ValueError):
    """A wallet file's field that is missing or of the wrong shape: what it says is said."""


_ABSENT = object()


def _field(raw: dict[str, Any], name: str, kind: type, default: Any = _ABSENT) -> Any:
    """``raw[name]``, of type ``kind``; ``default`` (if given) stands for a missing or null
    one."""
    value = raw.get(name)
    if value is None and default is not _ABSENT:
        return default
    if not isinstance(value, kind):
        raise _Shape(f"its {name} is {'missing' if value is None else 'not a ' + _KINDS[kind]}")
    return value


_KINDS: dict[type, str] = {str: "string", dict: "JSON object"}


def _record(raw: dict[str, Any], name: str, kind: Any, shape: dict[str, type]) -> Any:
    """The record ``raw[name]`` made into ``kind`` (None if absent): an object with exactly
    the fields of ``shape``, each of its type."""
    value = raw.get(name)
    if not value:
        return None
    if not isinstance(value, dict) or set(value) != set(shape) or \
            not all(isinstance(value[k], t) for k, t in shape.items()):
        raise _Shape(f"its {name} is not an object of {', '.join(shape)}")
    return kind(**value)


def default_wallet_path() -> Path:
    return Path.home() / ".tchain" / "wallet.json"


@dataclass(frozen=True)
class BankInfo:
    """The bank this wallet's chain lives at, with its key pinned at registration."""

    name: str
    url: str
    key: str
    chain: str


@dataclass(frozen=True)
class PendingKey:
    """A new owner key sealed and kept beside the current one while its ``rotate_key``
    intent (signed by the current key) is not yet confirmed by the bank (cli.rotation)."""

    public_key: str
    sealed: dict[str, Any]
    intent: dict[str, Any]


@dataclass(frozen=True)
class Wallet:
    """The wallet file. ``addresses`` are the addresses of other chains, by chain id, as
    their banks' signed records gave them: what history shows instead of ids. ``pending`` is
    a key rotation begun and not yet confirmed: until it is, ``public_key`` stays the key that
    signs."""

    path: Path
    public_key: str
    sealed: dict[str, Any]
    name: str | None = None
    chain: str | None = None
    address: str | None = None
    bank: BankInfo | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    pending: PendingKey | None = None

    # --- files -----------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, passphrase: str, *, force: bool = False) -> tuple[Wallet,
                                                                                  SigningKey]:
        if path.exists() and not force:
            raise WalletError(f"{path} already exists; refusing to overwrite a wallet "
                              "(its key may hold money)")
        if not passphrase:
            raise WalletError("the passphrase must not be empty")
        key = SigningKey.generate()
        wallet = cls(path, key.public_key, seal(key, passphrase))
        wallet.save()
        wallet.chain_file.unlink(missing_ok=True)
        return wallet, key

    @classmethod
    def load(cls, path: Path) -> Wallet:
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as e:
            raise WalletError(f"no wallet at {path}; create one with `tchain wallet create`"
                              ) from e
        except (OSError, ValueError) as e:
            raise WalletError(f"cannot read the wallet {path}: {e}") from e
        try:
            return cls._from_raw(path, raw)
        except _Shape as e:
            raise WalletError(f"the wallet {path} is damaged: {e}") from None

    @classmethod
    def _from_raw(cls, path: Path, raw: Any) -> Wallet:
        """The wallet a file's JSON describes, each field checked for its shape: a file cut
        or edited is named for what is wrong, never met later as Python's own error."""
        if not isinstance(raw, dict):
            raise _Shape("it is not a JSON object")
        if raw.get("version") != WALLET_VERSION:
            raise WalletError(f"wallet version {raw.get('version')} is not {WALLET_VERSION}")
        bank = _record(raw, "bank", BankInfo, {"name": str, "url": str, "key": str,
                                                "chain": str})
        pending = _record(raw, "pending", PendingKey, {"public_key": str, "sealed": dict,
                                                       "intent": dict})
        addresses = raw.get("addresses") or {}
        if not isinstance(addresses, dict) or \
                not all(isinstance(v, str) for v in addresses.values()):
            raise _Shape("its addresses are not an object of addresses by chain id")
        return cls(path, _field(raw, "public_key", str), _field(raw, "sealed", dict),
                   _field(raw, "name", str, None), _field(raw, "chain", str, None),
                   _field(raw, "address", str, None), bank, dict(addresses), pending)

    def save(self) -> None:
        """Write the wallet atomically (temp file, fsync, rename), readable by its owner only."""
        data = {"version": WALLET_VERSION, "public_key": self.public_key, "sealed": self.sealed,
                "name": self.name, "chain": self.chain, "address": self.address,
                "bank": None if self.bank is None else asdict(self.bank),
                "addresses": self.addresses,
                "pending": None if self.pending is None else asdict(self.pending)}
        write_atomically(self.path, (json.dumps(data, indent=2) + "\n").encode())

    def unlock(self, passphrase: str) -> SigningKey:
        return _open(self.sealed, self.public_key, passphrase)

    def unlock_pending(self, passphrase: str) -> SigningKey | None:
        """The key a rotation begun and not confirmed would make the owner, if there is one."""
        if self.pending is None:
            return None
        return _open(self.pending.sealed, self.pending.public_key, passphrase)

    def rotating(self, key: SigningKey, sealed: dict[str, Any], intent: dict[str, Any]
                 ) -> Wallet:
        """The wallet with ``key`` kept aside (saved) before its rotation is sent: from here
        a crash loses neither key."""
        wallet = replace(self, pending=PendingKey(key.public_key, sealed, intent))
        wallet.save()
        return wallet

    def promote(self) -> Wallet:
        """The wallet whose key is the pending one, once the bank's rotate_key entry verified
        (saved in one atomic write: the old key goes with the same write)."""
        assert self.pending is not None
        wallet = replace(self, public_key=self.pending.public_key, sealed=self.pending.sealed,
                         pending=None)
        wallet.save()
        return wallet

    def drop_pending(self) -> Wallet:
        """The wallet without its pending key, once its rotation can never be applied."""
        wallet = replace(self, pending=None)
        wallet.save()
        return wallet

    def registered(self, *, name: str, chain: str, address: str, bank: BankInfo) -> Wallet:
        wallet = replace(self, name=name, chain=chain, address=address, bank=bank)
        wallet.save()
        return wallet

    def remember(self, addresses: dict[str, str]) -> Wallet:
        """The wallet with these chains' addresses kept too (saved)."""
        wallet = replace(self, addresses={**self.addresses, **addresses})
        wallet.save()
        return wallet

    def require_chain(self) -> tuple[str, BankInfo]:
        if self.chain is None or self.bank is None:
            raise WalletError("this wallet has no chain yet; run `tchain register NAME "
                              "--validator URL`")
        return self.chain, self.bank

    # --- the local chain copy ---------------------------------------------------------------

    @property
    def chain_file(self) -> Path:
        return self.path.with_name(self.path.name + ".chain")

    def local_entries(self) -> list[bytes]:
        """The signed entries this wallet holds, in height order."""
        try:
            return [line for line in self.chain_file.read_bytes().split(b"\n") if line]
        except FileNotFoundError:
            return []

    def append_entries(self, entries: list[bytes]) -> None:
        """Add verified entries to the copy, which is written whole: a crash leaves the copy
        as it was or with all of them, never with part of a line."""
        if entries:
            self.replace_entries(self.local_entries() + entries)

    def replace_entries(self, entries: list[bytes]) -> None:
        """Make the copy exactly ``entries`` (verified by the caller), atomically."""
        write_atomically(self.chain_file, b"".join(e + b"\n" for e in entries))


def seal(key: SigningKey, passphrase: str) -> dict[str, Any]:
    """``key`` sealed by a key argon2id derives from ``passphrase``."""
    salt = nacl.utils.random(_KDF.SALTBYTES)
    ops, mem = _KDF.OPSLIMIT_INTERACTIVE, _KDF.MEMLIMIT_INTERACTIVE
    box = nacl.secret.SecretBox(_KDF.kdf(32, passphrase.encode(), salt, ops, mem))
    return {"kdf": "argon2id", "opslimit": ops, "memlimit": mem, "salt": salt.hex(),
            "box": bytes(box.encrypt(key.seed)).hex()}


def _open(sealed: dict[str, Any], public_key: str, passphrase: str) -> SigningKey:
    try:
        box = nacl.secret.SecretBox(_KDF.kdf(32, passphrase.encode(),
                                             bytes.fromhex(sealed["salt"]), sealed["opslimit"],
                                             sealed["memlimit"]))
        key = SigningKey(box.decrypt(bytes.fromhex(sealed["box"])))
    except nacl.exceptions.CryptoError as e:
        raise WalletError("wrong passphrase for this wallet") from e
    if key.public_key != public_key:
        raise WalletError("the wallet's key does not match its public key; it is damaged")
    return key
