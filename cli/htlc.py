"""``tchain htlc ...``: hash-time-locked transfers, the pieces of an atomic swap
(docs/adr/0008-hash-time-locks.md): make a secret, lock value under its hash, claim a lock
with the secret, and see where a lock stands (with the secret, once it was shown)."""

from __future__ import annotations

import secrets
from typing import Any

import click

from cli.common import open_session
from cli.errors import BankError
from cli.options import json_option
from cli.output import emit, when
from cli.params import ADDRESS, AMOUNT, ASSET, HEX64
from cli.session import Session
from tchain.clock import now_ms
from tchain.errors import NotFoundError
from tchain.htlc import MAX_LOCK_MS, MIN_LOCK_MS, hash_of
from tchain.model import ClaimBody, LockBody, SignedEntry

__all__ = ["htlc", "lock_on_chain"]


@click.group()
def htlc() -> None:
    """Hash-time-locked transfers: secret, lock, claim, show."""


@htlc.command("secret")
@json_option
@click.pass_context
def secret(ctx: click.Context) -> None:
    """Make a random preimage (32 bytes) and print it with its hash. Keep the preimage to
    yourself until you claim: whoever sees it can claim every lock on its hash."""
    preimage = secrets.token_hex(32)
    emit(ctx, {"preimage": preimage, "hash": hash_of(preimage)},
         f"preimage {preimage}\nhash     {hash_of(preimage)}")


@htlc.command("lock")
@click.argument("address", type=ADDRESS)
@click.argument("amount", type=AMOUNT)
@click.argument("uai", type=ASSET)
@click.option("--hash", "hash_", type=HEX64, required=True,
              help="The SHA-256 (hex) of the preimage that opens the lock.")
@click.option("--expires-in", type=click.FloatRange(MIN_LOCK_MS / 1000, MAX_LOCK_MS / 1000),
              required=True, help="Seconds until the lock expires and comes back to you.")
@json_option
@click.pass_context
def lock(ctx: click.Context, address: str, amount: str, uai: str, hash_: str,
         expires_in: float) -> None:
    """Hold AMOUNT of UAI for ADDRESS: theirs if they claim it with the preimage of --hash
    before it expires, yours again after (once their bank says nobody claimed it)."""
    done = open_session(ctx).lock(address, amount, uai, hash_, expires_in)
    entry = done.entries[0]
    body = entry.intent.body if entry.intent is not None else None
    assert isinstance(body, LockBody)
    emit(ctx, {"lock": entry.id, "height": entry.height, "expires": body.expires,
               "flow": done.flow},
         f"locked {amount} {uai} for {address} until {when(body.expires)} UTC: lock "
         f"{entry.id} (entry {entry.height} of your chain)")


@htlc.command("claim")
@click.argument("lock_id", type=HEX64)
@click.option("--preimage", type=HEX64, required=True, help="The secret the lock's hash opens.")
@json_option
@click.pass_context
def claim(ctx: click.Context, lock_id: str, preimage: str) -> None:
    """Take the lock LOCK_ID made for you, showing its preimage (it becomes visible to the
    lock's payer)."""
    done = open_session(ctx).claim(lock_id, preimage)
    entry = done.entries[0]
    emit(ctx, {"claim": entry.id, "height": entry.height, "lock": lock_id,
               "effects": [e.to_dict() for e in entry.effects]},
         f"claimed lock {lock_id}: {entry.effects[0].balance} {entry.effects[0].asset} "
         f"credited (entry {entry.height} of your chain)")


@htlc.command("show")
@click.argument("lock_id", type=HEX64)
@json_option
@click.pass_context
def show(ctx: click.Context, lock_id: str) -> None:
    """Where the lock LOCK_ID stands: locked, claimed (with its preimage) or released; from
    your verified chain, or, for a lock made for you and not claimed yet, from your bank."""
    session = open_session(ctx)
    session.sync()
    entries = [SignedEntry.from_bytes(raw) for raw in session.wallet.local_entries()]
    found = lock_on_chain(entries, lock_id) or _kept_for_us(session, lock_id)
    state = found["state"]
    if state == "locked" and now_ms() >= found["expires"]:
        state += " (expired: waiting for the payee's bank's word)"
    who = "you locked it" if found["role"] == "payer" else "for you"
    text = (f"lock {lock_id}: {state}\n{found['amount']} {found['asset']} ({who}), hash "
            f"{found['hash']}, expires {when(found['expires'])} UTC")
    if "preimage" in found:
        text += f"\npreimage {found['preimage']}"
    emit(ctx, found, text)


def _described(lock: SignedEntry, role: str, state: str) -> dict[str, Any]:
    body = lock.intent.body if lock.intent is not None else None
    assert isinstance(body, LockBody)
    return {"id": lock.id, "role": role, "state": state, "asset": str(body.asset),
            "amount": str(body.amount), "hash": body.hash, "expires": body.expires,
            "to": body.to, "to_validator": body.to_validator}


def lock_on_chain(entries: list[SignedEntry], lock_id: str) -> dict[str, Any] | None:
    """Where ``lock_id`` stands by a verified chain alone: a lock of ours (locked, claimed
    with the preimage its payee showed, or released) or a claim of ours; None if the chain
    has neither."""
    for entry in entries:
        if entry.kind == "lock" and entry.id == lock_id:
            payer = "payer"
            for later in entries[entry.height + 1:]:
                peer = later.evidence_entry(0) if later.kind in ("settle", "release") else None
                if peer is not None and later.kind == "release" and peer.id == lock_id:
                    return {**_described(entry, payer, "released"), "closed": later.id}
                if peer is not None and peer.kind == "claim" and \
                        peer.evidence_entry(0).id == lock_id:
                    return {**_described(entry, payer, "claimed"), "closed": later.id,
                            "preimage": _preimage(peer), "claim": peer.id}
            return _described(entry, payer, "locked")
        if entry.kind == "claim" and entry.evidence_entry(0).id == lock_id:
            return {**_described(entry.evidence_entry(0), "payee", "claimed"),
                    "preimage": _preimage(entry), "claim": entry.id}
    return None


def _preimage(claim: SignedEntry) -> str:
    body = claim.intent.body if claim.intent is not None else None
    assert isinstance(body, ClaimBody)
    return body.preimage


def _kept_for_us(session: Session, lock_id: str) -> dict[str, Any]:
    """A lock made for us and not on our chain yet: as our bank keeps it."""
    try:
        kept = session.lock_for_us(lock_id)
    except BankError as e:
        raise BankError(f"lock {lock_id} is not on your chain, and your bank keeps no lock of "
                        f"that id for you: {e.message}", code=NotFoundError.code) from e
    shown = {"open": "locked"}.get(kept["state"], kept["state"])
    return {**_described(kept["lock"], "payee", shown),
            "validator": kept["validator"]}
