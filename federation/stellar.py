"""The bank's face to wallets that speak Stellar's federation: SEP-1's ``stellar.toml`` and
SEP-2's flat answer.

The paper takes its federation from Stellar's, so a wallet that resolves ``bob*stellar.org``
should resolve ``alice*bank1.example`` too. Two things differ, and are decided here
(docs/protocol.md §7 says why):

- TChain's ``GET /federation`` answers the signed record ``{"record", "sig"}`` that TChain
  clients check field by field; SEP-2 clients read ``stellar_address`` and ``account_id`` at
  the top. No one object is both, so SEP-2 clients are sent, by the ``FEDERATION_SERVER`` of
  the bank's ``stellar.toml`` (the only place they learn it), to ``/federation/sep2``, whose
  answer is flat: the record's fields, ``address`` named ``stellar_address``, and the same
  signature, over the record those fields make again (:func:`verify_sep2_answer`).
- ``account_id`` stays the owner's key in hex, not a Stellar ``G...`` account id. The same
  Ed25519 key could be written as one, but a Stellar wallet would then pay it on the Stellar
  network, where no TChain bank sees the payment: with hex, such a wallet fails before it
  sends anything. ``SIGNING_KEY`` is the bank's key written as SEP-1 asks (a ``G...`` strkey):
  it is a key to check signatures with, not somewhere to send money.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from federation.records import verify_record
from tchain.errors import VerificationError

__all__ = ["SEP2_PATH", "STELLAR_TOML_PATH", "sep2_answer", "stellar_toml", "strkey",
           "verify_sep2_answer"]

STELLAR_TOML_PATH = "/.well-known/stellar.toml"
SEP2_PATH = "/federation/sep2"
SEP1_VERSION = "2.0.0"  # the version of SEP-1 read when this was written
_ACCOUNT_ID = 6 << 3  # the strkey version byte of an ed25519 public key ("G...")
_SEP2_FIELDS = frozenset({"stellar_address", "account_id", "chain", "validator", "sig"})


def strkey(public_key: str) -> str:
    """An Ed25519 public key (hex) as Stellar writes it: ``G`` and 55 more base32 letters
    (the version byte, the key and its CRC16-XModem, little-endian)."""
    payload = bytes([_ACCOUNT_ID]) + bytes.fromhex(public_key)
    check = binascii.crc_hqx(payload, 0).to_bytes(2, "little")
    return base64.b32encode(payload + check).decode("ascii")


def stellar_toml(*, name: str, public_key: str, api_url: str) -> str:
    """The bank's SEP-1 ``stellar.toml``: where its SEP-2 federation server is, and its key."""
    lines = [f"# {name} is a TChain bank: its customers' addresses are name*{name}.",
             "# account_id in its federation answers is the owner's Ed25519 key in hex, not",
             "# a Stellar account: pay it through TChain, not on the Stellar network.",
             f"VERSION = {json.dumps(SEP1_VERSION)}",
             f"FEDERATION_SERVER = {json.dumps(api_url + SEP2_PATH)}",
             f"SIGNING_KEY = {json.dumps(strkey(public_key))}",
             f"TCHAIN_WELL_KNOWN = {json.dumps(api_url + '/.well-known/tchain.json')}"]
    return "\n".join(lines) + "\n"


def sep2_answer(signed: dict[str, Any]) -> dict[str, Any]:
    """A signed federation record (``{"record", "sig"}``) in SEP-2's flat shape."""
    record = signed["record"]
    return {"stellar_address": record["address"], "account_id": record["account_id"],
            "chain": record["chain"], "validator": record["validator"], "sig": signed["sig"]}


def verify_sep2_answer(doc: Any, validator_key: str) -> dict[str, Any]:
    """Check a ``/federation/sep2`` answer against the bank's key; return the TChain record
    it carries (``address``, ``account_id``, ``chain``, ``validator``).

    Raises:
        VerificationError: saying what is wrong.
    """
    if not isinstance(doc, dict) or set(doc) != _SEP2_FIELDS:
        raise VerificationError(f"a SEP-2 answer has exactly the fields "
                                f"{', '.join(sorted(_SEP2_FIELDS))}")
    record = {"address": doc["stellar_address"], "account_id": doc["account_id"],
              "chain": doc["chain"], "validator": doc["validator"]}
    return verify_record({"record": record, "sig": doc["sig"]}, validator_key)
