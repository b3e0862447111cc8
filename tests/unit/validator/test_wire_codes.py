"""No answer carries a code outside docs/protocol.md §6 (the seventh outside attacker got an
unsigned 422 ``invalid``, a code no client knows, for a peer's lock)."""

from __future__ import annotations

import pytest

from tchain.errors import (
    ConflictError,
    EncodingError,
    SignatureError,
    TChainError,
    VerificationError,
    wire_errors,
)
from validator.app import on_the_wire


@pytest.mark.parametrize("error", [VerificationError("the proof fails its own check"),
                                   TChainError("a code no client knows", code="nope")])
def test_an_error_with_no_wire_code_is_answered_bad_request(error):
    answered = on_the_wire(error)
    assert (answered.code, answered.status, answered.message) == \
        ("bad_request", 400, error.message)


@pytest.mark.parametrize("error", [ConflictError("taken"), EncodingError("bad json"),
                                   SignatureError("bad sig")])
def test_a_wire_error_is_answered_as_it_is(error):
    assert on_the_wire(error) is error and error.code in wire_errors()
