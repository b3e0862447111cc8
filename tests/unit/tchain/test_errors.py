"""The status an error is answered with follows its protocol code where PROTOCOL.md §6 fixes
one: ``bad_request`` is always 400, whichever class raised it."""

from __future__ import annotations

from tchain.errors import EncodingError, RuleError, TChainError


def test_bad_request_is_always_status_400():
    assert RuleError("a chain cannot pay itself", code="bad_request").status == 400
    assert RuleError("wrong", code="bad_request", status=422).status == 400
    assert TChainError("malformed", code="bad_request").status == 400
    assert EncodingError("not JSON").status == 400


def test_other_codes_keep_their_class_status():
    assert RuleError("too poor", code="insufficient_funds").status == 422
    assert RuleError("gone", code="offer_closed", status=409).status == 409
