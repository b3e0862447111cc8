"""A bank's data directory: its config, its key and its LMDB store.

Layout of ``--data DIR``:
  config.json    name, api url, assets it issues (public facts)
  validator.key  the bank's Ed25519 seed, hex, mode 0600 (the one secret)
  ledger/        the LMDB environment
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tchain.errors import EncodingError, StoreError
from tchain.intents import register_request
from tchain.keys import SigningKey
from tchain.rules import BankIdentity
from tchain.values import UAI, parse_validator_name
from validator.errors import ConfigError
from validator.ledger import Ledger
from validator.store import Store

__all__ = ["BankConfig", "add_asset", "init_bank", "open_ledger"]

CONFIG_FILE = "config.json"
KEY_FILE = "validator.key"
LEDGER_DIR = "ledger"


@dataclass(frozen=True)
class BankConfig:
    """The public facts of a bank and where its data lives."""

    data: Path
    name: str
    url: str
    assets: tuple[str, ...]

    @classmethod
    def load(cls, data: str | os.PathLike[str]) -> BankConfig:
        path = Path(data)
        try:
            raw = json.loads((path / CONFIG_FILE).read_text("utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"{path} is not a validator data directory (no {CONFIG_FILE}); "
                              "run `tchain validator init` first") from e
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read {path / CONFIG_FILE}: {e}") from e
        return cls(path, raw["name"], raw["url"], tuple(raw["assets"]))

    def save(self) -> None:
        """Write ``config.json`` whole: to a new file renamed over the old, so that a process
        reading it (a worker, an operator's command) sees the old or the new, never half."""
        new = self.data / f".{CONFIG_FILE}.new"
        new.write_text(json.dumps({"name": self.name, "url": self.url,
                                   "assets": list(self.assets)}, indent=2) + "\n")
        os.replace(new, self.data / CONFIG_FILE)

    def signing_key(self) -> SigningKey:
        try:
            seed = bytes.fromhex((self.data / KEY_FILE).read_text("ascii").strip())
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read the bank key {self.data / KEY_FILE}: {e}") from e
        return SigningKey(seed)

    @property
    def uais(self) -> list[str]:
        """The assets the bank issues, by their UAIs (``bank1.example:USD``)."""
        return [f"{self.name}:{code}" for code in self.assets]

    @property
    def ledger_path(self) -> Path:
        return self.data / LEDGER_DIR

    @property
    def port(self) -> int:
        split = urlsplit(self.url)
        return split.port or (443 if split.scheme == "https" else 80)


def open_ledger(config: BankConfig, *, settle_deadline_ms: int = 30_000, handoff_ms: int = 0,
                **store_options: Any) -> Ledger:
    """The bank's ledger over its store (the store opens lazily, in the process that uses it);
    ``handoff_ms`` as for :class:`Ledger`."""
    key = config.signing_key()
    return Ledger(Store(config.ledger_path, **store_options), BankIdentity(key, config.name),
                  settle_deadline_ms=settle_deadline_ms, handoff_ms=handoff_ms)


def _check_url(url: str) -> str:
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname or split.query:
        raise ConfigError(f"--url must be an http(s) URL like http://127.0.0.1:8701, got {url!r}")
    return url.rstrip("/")


def init_bank(data: str | os.PathLike[str], *, name: str, url: str,
              assets: tuple[str, ...] = ("USD",)) -> BankConfig:
    """Create a new bank: key, config, store, and the bank's own chain (its IOUs live there).

    Every argument is checked before anything is written, and a failure after that (the store
    cannot be made) takes back what this call wrote: the folders it made, the key, the config,
    the store. What ``data`` held before is left as it was.

    Raises:
        ConfigError: if ``data`` already holds a bank, or an argument is invalid.
    """
    path = Path(data)
    try:
        parse_validator_name(name)
        for code in assets:
            UAI.parse(f"{name}:{code}")
    except EncodingError as e:
        raise ConfigError(e.message) from e
    config = BankConfig(path, name, _check_url(url), tuple(dict.fromkeys(assets)))
    if (path / CONFIG_FILE).exists() or (path / KEY_FILE).exists():
        raise ConfigError(f"{path} already holds a validator; refusing to overwrite its key")
    made = _Made(path)
    try:
        made.folders()
        key = SigningKey.generate()
        made.file(KEY_FILE)
        fd = os.open(path / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.seed.hex() + "\n")
        made.file(CONFIG_FILE)
        made.file(f".{CONFIG_FILE}.new")
        config.save()
        made.store(config.ledger_path)
        ledger = Ledger(Store(config.ledger_path), BankIdentity(key, name))
        try:
            _register_bank_chain(ledger, key, name)
        finally:
            ledger.store.close()
    except BaseException as e:
        made.undo()
        if isinstance(e, OSError):
            raise ConfigError(f"cannot create the bank in {path}: {e.strerror or e}"
                              f"{f' ({e.filename})' if e.filename else ''}") from e
        if isinstance(e, StoreError):
            raise ConfigError(f"cannot create the bank's store in {config.ledger_path}: "
                              f"{e.message}") from e
        raise
    return config


class _Made:
    """What init_bank made so far, to take back if it fails."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._folders: list[Path] = []  # made here, outermost first
        self._files: list[Path] = []
        self._store: Path | None = None

    def folders(self) -> None:
        missing = [p for p in (self._path, *self._path.parents) if not p.exists()]
        self._folders = list(reversed(missing))
        self._path.mkdir(parents=True, exist_ok=True)

    def file(self, name: str) -> None:
        self._files.append(self._path / name)

    def store(self, path: Path) -> None:
        if not path.exists():
            self._store = path

    def undo(self) -> None:
        if self._store is not None:
            shutil.rmtree(self._store, ignore_errors=True)
        for file in self._files:
            file.unlink(missing_ok=True)
        for folder in reversed(self._folders):
            with contextlib.suppress(OSError):  # not empty: something else is in it now
                folder.rmdir()


def add_asset(config: BankConfig, code: str) -> tuple[BankConfig, bool]:
    """Let the bank issue IOUs of ``code`` too (``<bank>:<code>``); a running bank lists it in
    its well-known document from its next answer on (Bank.assets).

    Returns:
        The config after, and whether the asset is new.

    Raises:
        ConfigError: ``code`` is not an asset code (1..12 of A-Z and 0-9).
    """
    try:
        UAI.parse(f"{config.name}:{code}")
    except EncodingError as e:
        raise ConfigError(e.message) from e
    if code in config.assets:
        return config, False
    after = dataclasses.replace(config, assets=(*config.assets, code))
    after.save()
    return after, True


def _register_bank_chain(ledger: Ledger, key: SigningKey, name: str) -> None:
    ledger.register(register_request(key, name, ledger.clock(), bank=name,
                                      kyc_record={"legal_name": name, "kind": "bank"}))
