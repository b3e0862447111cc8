"""Chain exports: the wallet's verified copy of its chain as a file, and back.

An export is the signed entries, one canonical JSON per line, genesis first: the format of the
wallet's own copy, so anyone can verify it with the bank's key alone (PROTOCOL.md §5). An
import (restoring a wallet from a backup, or moving it to a new machine) trusts nothing in the
file: every line is parsed strictly and the whole chain verified against the wallet's pinned
bank key and chain id before anything is kept. It must agree with every entry the wallet
already holds and may not be shorter (a rollback); a hostile or truncated file is refused with
one clear sentence and the wallet is left as it was.
"""

from __future__ import annotations

from pathlib import Path

from cli.atomic import write_atomically
from cli.errors import SecurityError, WalletError
from cli.localcopy import verified_copy
from cli.wallet import Wallet
from cli.walletlock import lock_path
from tchain.errors import TChainError
from tchain.model import SignedEntry
from tchain.verify import ChainVerifier

__all__ = ["MAX_EXPORT_BYTES", "export_chain", "import_chain"]

MAX_EXPORT_BYTES = 1 << 30
MAX_LINE_BYTES = 1 << 20  # a signed entry is far smaller; the server refuses larger bodies


def export_chain(wallet: Wallet, path: Path) -> int:
    """Write the wallet's copy to ``path``, once it verifies; return the number of entries.

    Raises:
        DamagedCopyError: the copy does not verify (nothing is written: an export is a
            backup, and a broken one would fail the day it is needed).
    """
    _refuse_to_replace(wallet, path)
    _, entries = verified_copy(wallet)
    try:
        write_atomically(path, b"".join(e.to_bytes() + b"\n" for e in entries))
    except OSError as e:
        raise WalletError(f"cannot write {path}: {e.strerror}") from e
    return len(entries)


def _refuse_to_replace(wallet: Wallet, path: Path) -> None:
    """An export is written by rename: it must not replace the wallet's own files (the third
    outside attacker exported over the wallet and lost its sealed key) nor anything that is
    not a plain file (as root, a rename replaced /dev/full)."""
    target = path.resolve()
    own = {wallet.path, wallet.chain_file, lock_path(wallet.path)}
    if target in {p.resolve() for p in own}:
        raise WalletError(f"{path} is one of your wallet's own files; export to another file")
    if path.exists() and not path.is_file():
        raise WalletError(f"{path} is not a plain file; export to a file")


def import_chain(wallet: Wallet, path: Path) -> int:
    """Verify the export at ``path`` and keep the entries past the wallet's copy; return how
    many were added. Nothing changes unless the whole file verifies."""
    chain, bank = wallet.require_chain()
    lines = _read_lines(path)
    verifier = ChainVerifier(bank.key, bank.name, chain)
    held = wallet.local_entries()
    verified: list[SignedEntry] = []
    for number, line in enumerate(lines, 1):
        try:
            entry = verifier.feed(line)
        except TChainError as e:
            raise SecurityError(f"{path} line {number} is refused: {e.message}") from e
        if entry.height < len(held) and SignedEntry.from_bytes(held[entry.height]).id != entry.id:
            raise SecurityError(f"{path} line {number} differs from the entry this wallet "
                                f"holds at height {entry.height}: refused (verify it with "
                                "`tchain verify` against the bank)")
        verified.append(entry)
    if len(verified) < len(held):
        raise SecurityError(f"{path} has {len(verified)} entries, fewer than the {len(held)} "
                            "this wallet holds: an older copy (a rollback) is never imported")
    new = [entry.to_bytes() for entry in verified[len(held):]]
    wallet.append_entries(new)
    return len(new)


def _read_lines(path: Path) -> list[bytes]:
    try:
        size = path.stat().st_size
        if size > MAX_EXPORT_BYTES:
            raise SecurityError(f"{path} is {size} bytes, more than an export may be")
        data = path.read_bytes()
    except OSError as e:
        raise WalletError(f"cannot read {path}: {e.strerror}") from e
    if not data:
        raise SecurityError(f"{path} is empty: an export holds at least the genesis entry")
    if not data.endswith(b"\n"):
        raise SecurityError(f"{path} is truncated: its last line does not end")
    lines = data[:-1].split(b"\n")
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_BYTES:
            raise SecurityError(f"{path} line {number} is {len(line)} bytes, larger than any "
                                "entry")
    return lines
