"""The bank's key written as Stellar writes keys, checked against stellar-sdk's own encoder."""

from __future__ import annotations

import tomllib

from hypothesis import given
from hypothesis import strategies as st
from stellar_sdk import StrKey

from federation.stellar import stellar_toml, strkey


@given(st.binary(min_size=32, max_size=32))
def test_a_key_is_the_strkey_stellar_sdk_writes(raw):
    assert strkey(raw.hex()) == StrKey.encode_ed25519_public_key(raw)


def test_the_toml_is_toml_and_names_the_sep2_server():
    key = "ab" * 32
    doc = tomllib.loads(stellar_toml(name="bank1.example", public_key=key,
                                     api_url="https://api.bank1.example"))
    assert doc["FEDERATION_SERVER"] == "https://api.bank1.example/federation/sep2"
    assert StrKey.decode_ed25519_public_key(doc["SIGNING_KEY"]).hex() == key
