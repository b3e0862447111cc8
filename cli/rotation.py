"""Rotating the chain's owner key (the ``rotate_key`` intent, docs/protocol.md §3) so that a
crash at any moment leaves a wallet that works.

The steps: (1) the new key is made, sealed by the passphrase and kept beside the current one,
with the rotation the current key signed, in one atomic write of the wallet (``pending``);
(2) the rotation is sent; (3) the bank's rotate_key entry is verified and kept in the copy;
(4) the new key becomes the wallet's key, in one atomic write.

A crash before (1) changes nothing. Between (1) and (2) the old key still owns the chain: it
goes on working, the next ``wallet rotate`` sends the rotation kept aside while the bank would
still take it, and any command drops it once the bank never could (its seq used, its time too
old). After (2) the bank may have applied it: the next command finds the chain owned by the
key kept aside (its copy says so, or the bank refuses reads signed by the old key) and
finishes the rotation. The old key is given up only in (4), when the new one is confirmed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cli.chainsync import catch_up, keep, open_copy, pull
from cli.errors import BankError, DamagedCopyError, SecurityError, UnreachableError, WalletError
from cli.output import when
from cli.wallet import seal
from tchain.clock import now_ms
from tchain.errors import EncodingError
from tchain.intents import sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.state import ChainState

if TYPE_CHECKING:
    from cli.session import Session

__all__ = ["STALE_MS", "finish_rotation", "rotate"]

STALE_MS = 300_000 + 60_000  # the bank's window for an intent's time, and a margin for clocks


def rotate(session: Session, passphrase: str) -> SignedEntry:
    """Make a new owner key, have the bank sign the rotation, keep the key once it verifies.

    A rotation kept aside by an earlier, interrupted run that the bank may still take is sent
    again instead of a new one. Returns the rotate_key entry.
    """
    chain, _, client = session._client()
    copy = open_copy(session.wallet)
    pull(session.wallet, client, copy, copy.entries[-1].height)
    keep(session.wallet, copy)
    if copy.state.owner != session.key.public_key:
        raise WalletError(f"your chain is owned by the key {copy.state.owner}, not by this "
                          "wallet's key: it cannot rotate it")
    if copy.state.recovery is not None:
        # a rotation does not stop a recovery: its key would own the chain all the same (the
        # third outside attacker's owner rotated, was told all was well, and lost the chain)
        raise WalletError(f"someone asked your bank to give your chain to the key "
                          f"{copy.state.recovery.owner} from {when(copy.state.recovery.at)}; a "
                          "new key does not stop that: run `tchain recovery cancel` first")
    if session.wallet.pending is not None and session.pending_key is not None:
        new_key, doc = session.pending_key, session.wallet.pending.intent
    else:
        new_key = SigningKey.generate()
        doc = sign_intent(session.key, "rotate_key", chain, copy.state.seq + 1, now_ms(),
                          {"owner": new_key.public_key})
        session.wallet = session.wallet.rotating(new_key, seal(new_key, passphrase), doc)
        session.pending_key = new_key
    try:
        answer = client.submit(doc)
    except BankError as e:
        if 400 <= e.status < 500:  # refused: nothing changed at the bank
            session.wallet = session.wallet.drop_pending()
            session.pending_key = None
        raise
    entries = answer.get("entries") if isinstance(answer, dict) else None
    try:
        mine = SignedEntry.from_dict(entries[0] if isinstance(entries, list) and entries
                                     else None)
    except EncodingError as e:
        raise SecurityError(f"the bank answered the rotation without its signed entry: "
                            f"{e.message}") from e
    if mine.intent is None or mine.intent.doc != doc:
        raise SecurityError("the bank's entry does not carry the rotation this wallet signed")
    catch_up(session.wallet, client, copy, mine)
    keep(session.wallet, copy)
    if copy.state.owner != new_key.public_key:
        raise SecurityError(f"after the rotation your chain is owned by {copy.state.owner}, "
                            f"not by the new key {new_key.public_key}")
    _promote(session)
    return mine


def finish_rotation(session: Session) -> str | None:
    """Settle a rotation that an interrupted ``wallet rotate`` left pending, as far as what
    is known now allows; return a sentence saying what was done, or None."""
    pending = session.wallet.pending
    if pending is None or session.pending_key is None:
        return None
    try:
        state = _state_now(session)
    except (UnreachableError, DamagedCopyError):
        return None  # the old key still signs; the rotation is settled another time
    if state.owner == pending.public_key:
        _promote(session)
        return (f"finished the key rotation an interrupted `tchain wallet rotate` began: your "
                f"key is now {pending.public_key}")
    intent = pending.intent["intent"]
    if state.seq >= intent["seq"] or now_ms() - intent["time"] > STALE_MS:
        session.wallet = session.wallet.drop_pending()
        session.pending_key = None
        return ("dropped the key rotation an interrupted `tchain wallet rotate` began: it never "
                "reached your bank, and your key is unchanged")
    return None


def _state_now(session: Session) -> ChainState:
    """The chain's state: from the copy when it already shows the new owner, else from the
    bank, read with the old key or, when the bank refuses that key, with the new one."""
    assert session.wallet.pending is not None and session.pending_key is not None
    state = open_copy(session.wallet).state
    if state.owner == session.wallet.pending.public_key:
        return state
    try:
        return session.sync().state
    except BankError as e:
        if e.status not in (401, 403):
            raise
    session.key, session.pending_key = session.pending_key, session.key  # the bank moved on
    try:
        return session.sync().state
    finally:
        session.key, session.pending_key = session.pending_key, session.key


def _promote(session: Session) -> None:
    assert session.pending_key is not None
    session.key = session.pending_key
    session.pending_key = None
    session.wallet = session.wallet.promote()
