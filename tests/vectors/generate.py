"""Make the golden vectors in this folder (run: python3 -m tests.vectors.generate).

Deterministic: fixed seeds and a fixed clock, and Ed25519 signatures are deterministic, so the
output only changes if the encoding, the digests or the entry format change: which is exactly
what the vector tests are there to catch. Never regenerate them to make a failing test pass.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from tchain.digest import digest
from tchain.encoding import canonical, parse
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry
from tchain.rules import BankIdentity
from validator.ledger import Ledger
from validator.store import Store

HERE = Path(__file__).parent
T0 = 1_763_700_000_000
BANK = "bank1.example"
USD = f"{BANK}:USD"
SEEDS = {"bank": "01" * 32, "alice": "02" * 32, "bob": "03" * 32}

CANONICAL_INPUTS = [
    ("key order and whitespace", ' { "b" : 2 , "a" : 1 } ', "document"),
    ("nested objects sort recursively", '{"z":{"y":1,"x":[3,{"b":0,"a":0}]},"a":null}',
     "document"),
    ("unicode stays UTF-8, controls are escaped", '{"memo":"caf\\u00e9 \\u20ac \\n\\u0001"}',
     "intent"),
    ("key order is by UTF-16 code units", '{"\\u20ac":1,"\\ud83d\\ude00":2,"a":3}', "record"),
    ("the largest safe integer", '{"seq":9007199254740991,"t":true,"f":false}', "entry"),
    ("a payment intent", '{"type":"payment","chain":"' + "ab" * 32 + '","seq":7,'
     '"time":1763700000000,"body":{"to":"' + "cd" * 32 + '","to_validator":"bank2.example",'
     '"asset":"bank1.example:USD","amount":"1050","memo":"rent"}}', "intent"),
]


def canonical_vectors() -> list[dict[str, Any]]:
    out = []
    for name, text, kind in CANONICAL_INPUTS:
        value = parse(text)
        out.append({"name": name, "input": text, "canonical_hex": canonical(value).hex(),
                    "kind": kind, "digest_hex": digest(kind, value).hex()})
    return out


def chain_vector() -> dict[str, Any]:
    keys = {n: SigningKey(bytes.fromhex(s)) for n, s in SEEDS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        clock = iter(range(T0, T0 + 1000, 100))
        ledger = Ledger(Store(Path(tmp)), BankIdentity(keys["bank"], BANK),
                        clock=lambda: next(clock))
        ledger.register(register_request(keys["bank"], BANK, T0, bank=BANK,
                                         kyc_record={"legal_name": BANK}))
        alice = ledger.register(register_request(keys["alice"], "alice", T0, bank=BANK,
                                                 kyc_record={"legal_name": "Alice Example"}))
        bob = ledger.register(register_request(keys["bob"], "bob", T0, bank=BANK,
                                               kyc_record=None))
        ledger.deposit(f"alice*{BANK}", USD, 100000)
        ledger.submit(sign_intent(keys["alice"], "payment", alice.id, 1, T0 + 500,
                                  {"to": bob.id, "to_validator": BANK, "asset": USD,
                                   "amount": "1050", "memo": "rent"}))
        with ledger.store.read() as r:
            entries = [parse(e) for e in r.entries(alice.id, 0, 10)]
        ledger.store.close()
    return {"validator_name": BANK, "validator_key": keys["bank"].public_key,
            "seeds": SEEDS, "chain": alice.id, "entries": entries,
            "entry_ids": [SignedEntry.from_dict(e).id for e in entries]}


def write() -> None:
    (HERE / "canonical.json").write_text(json.dumps(canonical_vectors(), indent=2,
                                                    ensure_ascii=False) + "\n")
    (HERE / "chain.json").write_text(json.dumps(chain_vector(), indent=2) + "\n")


if __name__ == "__main__":
    write()
