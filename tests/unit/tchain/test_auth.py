"""Authenticated requests (PROTOCOL.md §7): a header is good for one request to one bank."""

from __future__ import annotations

import pytest

from tchain.auth import authorization_header, request_doc, verify_authorization
from tchain.errors import AuthError
from tchain.keys import SigningKey

T = 1_763_700_000_000
PATH = "/v1/chains"


def test_a_header_verifies_at_the_bank_it_was_made_for():
    key = SigningKey.generate()
    header = authorization_header(key, "GET", PATH, "", b"", T, bank="bank1.example")
    assert verify_authorization(header, "GET", PATH, "", b"", T, bank="bank1.example") == \
        key.public_key


def test_rejects_a_header_made_for_another_bank():
    header = authorization_header(SigningKey.generate(), "GET", PATH, "", b"", T,
                                  bank="bank1.example")
    with pytest.raises(AuthError, match=r"request to bank2\.example") as info:
        verify_authorization(header, "GET", PATH, "", b"", T, bank="bank2.example")
    assert (info.value.code, info.value.status) == ("unauthorized", 401)


def test_rejects_a_header_signed_without_a_bank():
    """A signature over the request document as it was before the bank was named."""
    key = SigningKey.generate()
    doc = request_doc("GET", PATH, "", b"", T, bank="bank1.example")
    del doc["bank"]
    header = f"TChain key={key.public_key}, time={T}, sig={key.sign('request', doc)}"
    with pytest.raises(AuthError):
        verify_authorization(header, "GET", PATH, "", b"", T, bank="bank1.example")
