"""What every bank checks of the holds nested in a routed payment, hop by hop, against what
the payer signed (docs/adr/0015-correspondent-routes.md, "Update (attack 13)"; docs/protocol.md
§13 "Routes").

The payer's signed intent names its route (``via``), the least the payee gets (``receive``)
and the key of every bank after its own (``keys``, as its wallet checked each bank's signed
well-known document against the key the bank before it lists). A correspondent's word is never
enough for any of it: every forwarding hold is signed by the key the payer signed for its
bank, hands on the payer's asset code (only the issuer changes: no exchange on the way), and
moves no third bank's IOU between the two banks it goes between. An outside tester, holding
one bank's key, had a key of its own making accepted as the next bank's (and kept the payer's
money without a proof), the asset changed at the last hop, and a third bank's IOU crossing a
hop upstream of the one the receiver sees.

Pure: the engine and the offline verifier call it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tchain.books import check_crossing
from tchain.errors import BadRequestError, ForeignAssetError, MisconductError, RouteRefusedError
from tchain.model import PaymentBody, SignedEntry

__all__ = ["check_along", "check_first_pin", "check_signed_key", "payer_key_of"]


def payer_key_of(payer: PaymentBody, bank: str) -> str:
    """The key the payer signed for ``bank`` on its route.

    Raises:
        MisconductError: (bad_request) the payer signed none for it: not on its route.
    """
    key = payer.route.key_of(bank) if payer.route is not None else None
    if key is None:
        raise _bad(f"the payer signed no key for {bank}: it is not on its route")
    return key


def check_signed_key(payer: PaymentBody, bank: str, key: str) -> None:
    """``key`` is the one the payer signed for ``bank``.

    Raises:
        MisconductError: (bad_request) it is another.
    """
    signed = payer_key_of(payer, bank)
    if key != signed:
        raise _bad(f"{bank}'s key is {key[:16]}…, the payer signed {signed[:16]}… for it")


def check_first_pin(body: PaymentBody, pinned_key: str | None) -> None:
    """The payer's bank's check before it holds: the key the payer signed for its first
    correspondent is the one this bank pins for it (a wallet that met another key, say a
    lying document, learns it now and nothing is held).

    Raises:
        RouteRefusedError: it is another (an unpinned first bank is refused by the rules).
    """
    if body.route is None or not body.route.via or pinned_key is None:
        return
    first = body.route.via[0]
    if body.route.key_of(first) != pinned_key:
        raise RouteRefusedError(f"the payer signed another key for {first} than its bank pins")


def check_along(holds: Sequence[SignedEntry], bodies: Sequence[PaymentBody]) -> None:
    """Every hold of a route (``holds``, the last sent first, the payer's last, with their
    ``bodies``) against the payer's signed route: each correspondent's hold is signed by the key
    the payer signed for it, pays the payer's asset code, and moves an IOU of one of the two
    banks it goes between; every hold, the payer's too, moves a bank's IOU, never a
    customer's.

    Raises:
        MisconductError: (bad_request) one does not.
    """
    payer = bodies[-1]
    assert payer.route is not None
    via = payer.route.via
    for back, (hold, body) in enumerate(zip(holds, bodies, strict=True)):
        if body.asset.code != payer.asset.code:
            raise _bad(f"a hold along the route pays {body.asset}, the payer paid "
                       f"{payer.asset.code}: a route changes no asset code")
        if not body.asset.is_bank_iou:  # (the round 15 tester paid with bob*bank2's; round 17
            # nested a payer's hold in a customer's IOU: the payer's bank refuses to hold one)
            raise _bad(f"a hold along the route moves {body.asset}, a customer's asset: a "
                       "route moves banks' IOUs")
        hop = len(holds) - 1 - back  # 0: the payer's hold; k: the k-th correspondent's
        if hop == 0:
            continue  # its bank is the receiver's pinned peer, or signed by a hold after it
        bank = via[hop - 1]
        check_signed_key(payer, bank, hold.validator)
        onward = via[hop] if hop < len(via) else payer.to_validator
        assert onward is not None
        try:
            check_crossing(bank, onward, str(body.asset))
        except ForeignAssetError as e:
            raise MisconductError.of(e) from e


def _bad(what: str) -> MisconductError:
    return MisconductError.of(BadRequestError(what))
