"""A peer message refused after its handler has already written must leave only the kept
refusal: the outside tester of round 12 (Finding 5) saw a plan's hold released with nothing in
the plan's log, because ``Plans.receive`` wrote the release and then refused the log, and the
refusal was kept in the same write with everything written before it."""

from __future__ import annotations

from typing import Any

from tchain.encoding import parse
from tchain.errors import BadRequestRuleError
from tchain.messages import signed_message
from tests.interbank_net import two_banks
from validator.interbank import inbox
from validator.store import Writer


def test_a_refused_message_keeps_its_refusal_and_nothing_its_handler_wrote(tmp_path, monkeypatch):
    clock, b1, b2, _ = two_banks(tmp_path)

    def writes_then_refuses(part: Any, w: Writer, m: Any, peer_key: str, now: int) -> Any:
        w.put_record("proofs", "ab" * 32, {"kept": True})
        raise BadRequestRuleError("this log does not fit the plan")

    monkeypatch.setitem(inbox._HANDLERS, "plan", writes_then_refuses)
    message = signed_message(b1.key, "plan", b1.name, b2.name, clock(), log=[])
    answer = parse(b2.interbank.receive(message.doc, b1.key.public_key))
    assert answer["message"]["type"] == "refused"
    assert answer["message"]["error"] == "bad_request"
    with b2.ledger.store.read() as r:
        assert r.record("proofs", "ab" * 32) is None
        assert r.answer(message.id) is not None  # the refusal is kept, and repeated


def test_an_accepted_message_keeps_what_its_handler_wrote(tmp_path, monkeypatch):
    clock, b1, b2, _ = two_banks(tmp_path)

    def writes(part: Any, w: Writer, m: Any, peer_key: str, now: int) -> Any:
        w.put_record("proofs", "cd" * 32, {"kept": True})
        return part._answer(m, "ack", now)

    monkeypatch.setitem(inbox._HANDLERS, "plan", writes)
    message = signed_message(b1.key, "plan", b1.name, b2.name, clock(), log=[])
    assert parse(b2.interbank.receive(message.doc, b1.key.public_key))["message"]["type"] == "ack"
    with b2.ledger.store.read() as r:
        assert r.record("proofs", "cd" * 32) == {"kept": True}
