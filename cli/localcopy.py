"""The wallet's own copy of its chain, verified before anything trusts it.

Every command that reads the copy verifies it whole against the bank key and chain id the
wallet pinned at registration (PROTOCOL.md §5). A copy that is missing or does not verify is
never patched up behind the customer's back: the error says so and names the one mend,
``tchain sync --rebuild``, which fetches the chain again and verifies it from its genesis.
"""

from __future__ import annotations

from cli.errors import DamagedCopyError
from cli.parallel_verify import default_workers, verify_all
from cli.wallet import Wallet
from tchain.errors import VerificationError
from tchain.model import SignedEntry
from tchain.verify import ChainVerifier

__all__ = ["REBUILD", "verified_copy"]

REBUILD = ("run `tchain sync --rebuild` to fetch it again from your bank and verify it from its "
           "genesis")


def verified_copy(wallet: Wallet) -> tuple[ChainVerifier, list[SignedEntry]]:
    """The verifier after the whole copy, and the copy's entries in height order.

    Raises:
        DamagedCopyError: the copy is missing, empty, or does not verify.
    """
    chain, bank = wallet.require_chain()
    path = wallet.chain_file
    if not path.exists():
        raise DamagedCopyError(f"your copy of the chain ({path}) is missing; {REBUILD}")
    entries = wallet.local_entries()
    verifier = ChainVerifier(bank.key, bank.name, chain)
    try:
        held = verify_all(verifier, entries, workers=default_workers(len(entries)))
    except VerificationError as e:
        raise DamagedCopyError(f"your copy of the chain ({path}) does not verify ({e.message}); "
                               f"{REBUILD}") from e
    if not held:
        raise DamagedCopyError(f"your copy of the chain ({path}) is empty; {REBUILD}")
    return verifier, held
