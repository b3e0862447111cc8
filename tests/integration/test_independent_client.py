"""A client written only from shared/PROTOCOL.md, importing nothing of ours: it registers, gets a
deposit, pays, reads and verifies chains against the real validator.

If this test fails while the rest pass, we have drifted from the protocol.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time

import nacl.signing
import requests
import rfc8785


def digest(kind: str, doc) -> bytes:
    return hashlib.sha256(b"tchain/v1/" + kind.encode() + b"\n" + rfc8785.dumps(doc)).digest()


def sign(key: nacl.signing.SigningKey, kind: str, doc) -> str:
    return key.sign(digest(kind, doc)).signature.hex()


def check(pub: str, kind: str, doc, sig: str) -> None:
    nacl.signing.VerifyKey(bytes.fromhex(pub)).verify(digest(kind, doc), bytes.fromhex(sig))


def now() -> int:
    return int(time.time() * 1000)


class Client:
    def __init__(self, url: str, bank: str, name: str) -> None:
        self.url, self.bank, self.name = url, bank, name
        self.key = nacl.signing.SigningKey.generate()
        self.pub = self.key.verify_key.encode().hex()
        self.chain = ""
        self.seq = 0

    def register(self, bank: str | None = None) -> requests.Response:
        """Register at this client's bank, signing the intent for ``bank`` (default: it)."""
        kyc = {"legal_name": self.name.title(), "country": "UA"}
        intent = {"type": "register", "seq": 0, "time": now(),
                  "body": {"name": self.name, "bank": bank or self.bank, "owner": self.pub,
                           "kyc": hashlib.sha256(rfc8785.dumps(kyc)).hexdigest(),
                           "params": {}}}
        # Sent pretty-printed with keys out of order: the server re-canonicalizes.
        body = json.dumps({"sig": sign(self.key, "intent", intent), "kyc_record": kyc,
                           "intent": intent}, indent=3)
        r = requests.post(self.url + "/v1/chains", data=body, timeout=10)
        if r.status_code == 201:
            self.chain = digest("entry", r.json()["entry"]).hex()
        return r

    def pay(self, to_chain: str, bank: str, amount: str, asset: str) -> requests.Response:
        intent = {"type": "payment", "chain": self.chain, "seq": self.seq + 1, "time": now(),
                  "body": {"to": to_chain, "to_validator": bank, "asset": asset,
                           "amount": amount, "memo": "independent"}}
        r = requests.post(self.url + "/v1/intents",
                          json={"intent": intent, "sig": sign(self.key, "intent", intent)},
                          timeout=10)
        if r.status_code == 201:
            self.seq += 1
        return r

    def read(self, path: str, query: str = "", bank: str | None = None) -> requests.Response:
        """A signed read of this client's bank, the header made for ``bank`` (default: it)."""
        t = now()
        doc = {"method": "GET", "path": path, "query": query,
               "body": hashlib.sha256(b"").hexdigest(), "time": t, "bank": bank or self.bank}
        header = f"TChain key={self.pub}, time={t}, sig={sign(self.key, 'request', doc)}"
        return requests.get(self.url + path + (f"?{query}" if query else ""),
                            headers={"Authorization": header}, timeout=10)


def verify_chain(entries: list, validator_key: str, bank: str, owner: str) -> dict[str, int]:
    """PROTOCOL.md §5, steps 1-3 and balances, written from the page; and the genesis's
    register intent names the bank (§3)."""
    balances: dict[str, int] = {}
    prev, seq = "0" * 64, 0
    chain_id = None
    for height, signed in enumerate(entries):
        entry = signed["entry"]
        assert entry["validator"] == validator_key
        check(validator_key, "entry", entry, signed["sig"])                      # (1)
        assert entry["height"] == height and entry["prev"] == prev                # (2)
        if height == 0:
            assert entry["chain"] is None and entry["kind"] == "genesis"
            assert entry["intent"]["intent"]["body"]["bank"] == bank
            chain_id = digest("entry", entry).hex()
        else:
            assert entry["chain"] == chain_id
        if entry["intent"] is not None:                                           # (3)
            intent = entry["intent"]
            check(owner, "intent", intent["intent"], intent["sig"])
            if height > 0:
                assert intent["intent"]["chain"] == chain_id
                assert intent["intent"]["seq"] == seq + 1
                seq += 1
        for evidence in entry["evidence"]:                                        # (4)
            check(evidence["entry"]["validator"], "entry", evidence["entry"], evidence["sig"])
        for effect in entry["effects"]:                                           # (5)
            balances[effect["asset"]] = balances.get(effect["asset"], 0) + int(effect["balance"])
            assert balances[effect["asset"]] >= 0
        prev = digest("entry", entry).hex()
    return balances


def test_independent_client_registers_pays_reads_and_verifies(bank):
    well_known = requests.get(bank.url + "/.well-known/tchain.json", timeout=10).json()
    document = well_known["document"]
    check(document["public_key"], "document", document, well_known["sig"])
    name, key = document["name"], document["public_key"]
    usd = f"{name}:USD"

    ann, ben = Client(bank.url, name, "ann-indep"), Client(bank.url, name, "ben-indep")
    elsewhere = ann.register(bank="other-bank.example")  # signed for another bank: refused
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "bad_request"
    assert ann.register().status_code == 201
    assert ben.register().status_code == 201
    record = requests.get(bank.url + "/federation",
                          params={"type": "name", "q": f"ben-indep*{name}"}, timeout=10).json()
    check(key, "record", record["record"], record["sig"])
    assert record["record"]["chain"] == ben.chain

    subprocess.run([sys.executable, "-P", "-m", "cli", "validator", "deposit", "--data",
                    str(bank.data), f"ann-indep*{name}", "5000", usd], check=True,
                   capture_output=True, timeout=60)

    r = ann.pay(ben.chain, name, "1234", usd)
    assert r.status_code == 201, r.text
    assert [e["entry"]["kind"] for e in r.json()["entries"]] == ["payment", "credit"]
    refused = ann.pay(ben.chain, name, "999999", usd)
    assert refused.status_code == 422 and refused.json()["error"] == "insufficient_funds"

    elsewhere = ann.read(f"/v1/chains/{ann.chain}", bank="other-bank.example")
    assert elsewhere.status_code == 401 and elsewhere.json()["error"] == "unauthorized"
    for client, expected in ((ann, 5000 - 1234), (ben, 1234)):
        info = client.read(f"/v1/chains/{client.chain}").json()
        entries = client.read(f"/v1/chains/{client.chain}/entries", "from=0&limit=1000"
                              ).json()["entries"]
        assert verify_chain(entries, key, name, client.pub) == {usd: expected}
        assert info["balances"][usd]["balance"] == str(expected)
        assert info["height"] == len(entries) - 1
