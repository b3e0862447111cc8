"""Keeping the wallet's copy of its chain in step with the bank (docs/protocol.md §8).

The wallet fetches from its last held height (the answer overlaps what it holds), verifies
every new entry, and requires the bank's signed status, bound to the request it just made, to
equal the verified chain. A bank that serves another entry at a height the wallet holds has
signed two histories: the two entries are an equivocation proof, written beside the wallet.

A chain grows while it is read whenever someone pays its owner: a status that is ahead of
what was fetched means entries came meanwhile, so they are fetched and the status asked again.
Only a status behind the verified chain, or one that disagrees with it at the same height, is
the bank's fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.atomic import write_atomically
from cli.client import BankClient
from cli.errors import BankError, SecurityError
from cli.localcopy import verified_copy
from cli.wallet import BankInfo, Wallet
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.errors import EncodingError, SignatureError, VerificationError
from tchain.model import SignedEntry
from tchain.proofs import equivocation_proof
from tchain.state import ChainState
from tchain.status import verify_status
from tchain.verify import ChainVerifier

__all__ = ["PAGE", "Copy", "catch_up", "keep", "open_copy", "proofs_against", "pull",
           "rebuild"]

PAGE = 1000
STATUS_ROUNDS = 5  # a chain that grew this many times while it was read: try again later


@dataclass
class Copy:
    """The chain as this command has verified it: the verifier after its last entry and every
    entry from the genesis; the first ``kept`` of them are in the wallet's file already."""

    verifier: ChainVerifier
    entries: list[SignedEntry]
    kept: int

    @property
    def state(self) -> ChainState:
        state = self.verifier.state
        assert state is not None, "a copy holds at least the genesis"
        return state


def open_copy(wallet: Wallet) -> Copy:
    """The wallet's copy, verified whole (cli.localcopy)."""
    verifier, entries = verified_copy(wallet)
    return Copy(verifier, entries, len(entries))


def keep(wallet: Wallet, copy: Copy) -> int:
    """Write what the copy verified since it was opened; return how many entries that was."""
    new = [entry.to_bytes() for entry in copy.entries[copy.kept:]]
    wallet.append_entries(new)
    copy.kept = len(copy.entries)
    return len(new)


def pull(wallet: Wallet, client: BankClient, copy: Copy, start: int) -> None:
    """Fetch the chain from height ``start``, verify what is new, and check the bank's signed
    status against the verified chain (nothing is written: see :func:`keep`).

    Raises:
        SecurityError: the bank served an entry that does not verify, another entry at a
            height already verified (the proof is written), or a status that contradicts the
            verified chain (a rollback, a freeze, other balances).
    """
    chain, bank = wallet.require_chain()
    ahead = False  # the last status was ahead of what had been fetched
    for _ in range(STATUS_ROUNDS):
        before = copy.verifier.height
        _fetch(wallet, client, copy, start)
        answer, request = client.chain(chain)
        try:
            info = verify_status(bank.key, answer, request=request)
        except VerificationError as e:
            raise SecurityError(f"the bank's chain status is refused: {e.message}") from e
        state = copy.state
        height = info.get("height") if isinstance(info, dict) else None
        if isinstance(height, int) and height > state.height:
            if ahead and copy.verifier.height == before:
                raise SecurityError(f"the bank reports height {height} but serves your chain "
                                    f"only up to height {state.height}")
            ahead = True
            start = state.height  # entries came while we read (a credit): fetch them too
            continue
        if height != state.height or info.get("head") != state.head:
            raise SecurityError(
                f"the bank reports height {_get(info, 'height')} head {_get(info, 'head')}, but "
                f"the verified chain is at height {state.height} head {state.head}: the bank "
                "is serving a rolled-back or inconsistent chain")
        expected = {a: b.to_dict() for a, b in state.balances.items()}
        if info.get("balances") != expected:
            raise SecurityError(f"the bank reports balances {info.get('balances')} but the "
                                f"verified chain gives {expected}")
        return
    raise BankError(f"your chain grew {STATUS_ROUNDS} times while it was being read; try "
                    "again")


def catch_up(wallet: Wallet, client: BankClient, copy: Copy, mine: SignedEntry) -> None:
    """Add ``mine``, the entry the bank answered a submitted intent with, to the copy.

    It is normally the next entry; when others came between our sync and our intent (a
    credit), they are fetched and verified first, and the bank must serve ``mine`` among them.
    """
    if mine.height == copy.verifier.height + 1:
        try:
            copy.verifier.feed(mine)
        except VerificationError as e:
            raise SecurityError(f"the bank's signed entry does not verify: {e.message}") from e
        copy.entries.append(mine)
        return
    pull(wallet, client, copy, copy.entries[-1].height)
    if mine.height >= len(copy.entries):
        raise SecurityError(f"the bank answered with entry {mine.height} of your chain but "
                            f"serves it only up to height {copy.verifier.height}")
    held = copy.entries[mine.height]
    if held.id != mine.id:
        _, bank = wallet.require_chain()
        write_equivocation(wallet, held, mine, bank)


def _fetch(wallet: Wallet, client: BankClient, copy: Copy, start: int) -> None:
    chain, bank = wallet.require_chain()
    while True:
        page = client.entries(chain, start, PAGE)
        for item in page:
            _take(wallet, copy, item, bank)
        if len(page) < PAGE:
            return
        start += len(page)


def _take(wallet: Wallet, copy: Copy, item: Any, bank: BankInfo) -> None:
    try:
        served = SignedEntry.from_dict(item)
    except EncodingError as e:
        raise SecurityError(f"the bank served a malformed entry: {e.message}") from e
    if served.height < len(copy.entries):
        held = copy.entries[served.height]
        if served.id != held.id:
            write_equivocation(wallet, held, served, bank)
        return
    if served.height != copy.verifier.height + 1:
        raise SecurityError(f"the bank served height {served.height} where "
                            f"{copy.verifier.height + 1} was due")
    try:
        copy.verifier.feed(served)
    except VerificationError as e:
        raise SecurityError(f"the bank served an entry that does not verify: "
                            f"{e.message}") from e
    copy.entries.append(served)


def proofs_against(wallet: Wallet) -> list[Path]:
    """The equivocation proofs against the wallet's bank written beside the wallet."""
    chain, _ = wallet.require_chain()
    return sorted(wallet.path.parent.glob(f"equivocation-{chain[:16]}-*.json"))


def write_equivocation(wallet: Wallet, mine: SignedEntry, served: SignedEntry,
                       bank: BankInfo) -> None:
    """Write the proof that ``bank`` signed both entries, and stop.

    Raises:
        SecurityError: always, naming the proof.
    """
    try:
        served.verify(bank.key)
    except (SignatureError, EncodingError) as e:
        raise SecurityError(f"the bank served a different entry at height {served.height}, "
                            "with a signature that does not verify") from e
    proof = equivocation_proof(mine, served)
    path = wallet.path.with_name(f"equivocation-{mine.chain_id[:16]}-{mine.height}.json")
    path.write_bytes(canonical(proof) + b"\n")
    raise SecurityError(
        f"SECURITY: bank {bank.name} signed two different entries at height {mine.height} "
        f"of your chain; the proof is in {path}. Do not trust this bank's answers.")


def rebuild(wallet: Wallet, client: BankClient, owners: set[str]) -> tuple[Copy, Path | None]:
    """Fetch the whole chain again, verify it from its genesis, and make it the copy.

    Never over an equivocation proof: with one beside the wallet nothing is rebuilt, and an
    entry of the old copy that the bank signed and now serves otherwise (or no longer serves)
    is refused as what it is. The old copy, when it differs, is kept beside the new one.
    ``owners`` are the keys this wallet holds: the chain served must be owned by one of them.

    Returns:
        The verified copy, and where the old copy was kept (None if there was none to keep).
    """
    chain, bank = wallet.require_chain()
    proofs = proofs_against(wallet)
    if proofs:
        raise SecurityError(f"{proofs[0]} proves that {bank.name} signed two different "
                            "histories of your chain: a copy rebuilt from what it serves would "
                            "take one of them on its word, so none is rebuilt; keep the proof, "
                            "it is your evidence")
    copy = Copy(ChainVerifier(bank.key, bank.name, chain), [], 0)
    pull(wallet, client, copy, 0)
    if copy.state.owner not in owners:
        raise SecurityError(f"the chain {bank.name} serves is owned by the key "
                            f"{copy.state.owner}, which this wallet does not hold")
    for old in _signed_by(wallet, bank, chain):
        if old.height >= len(copy.entries):
            raise SecurityError(f"your old copy holds entry {old.height} of your chain, signed "
                                f"by {bank.name}, which it no longer serves: it rolled your "
                                "chain back; nothing was rebuilt")
        if copy.entries[old.height].id != old.id:
            write_equivocation(wallet, old, copy.entries[old.height], bank)
    data = b"".join(entry.to_bytes() + b"\n" for entry in copy.entries)
    kept_old = None
    path = wallet.chain_file
    if path.exists() and (old_bytes := path.read_bytes()) != data:
        kept_old = path.with_name(f"{path.name}.old-{now_ms()}")
        write_atomically(kept_old, old_bytes)
    write_atomically(path, data)
    copy.kept = len(copy.entries)
    return copy, kept_old


def _signed_by(wallet: Wallet, bank: BankInfo, chain: str) -> list[SignedEntry]:
    """The entries of the old copy, however damaged it is, that the bank signed for this
    chain: what the bank can no longer deny."""
    out = []
    for line in wallet.local_entries():
        try:
            entry = SignedEntry.from_bytes(line)
            entry.verify(bank.key)
        except (EncodingError, SignatureError):
            continue
        if entry.chain_id == chain:
            out.append(entry)
    return out


def _get(info: Any, key: str) -> Any:
    return info.get(key) if isinstance(info, dict) else None
