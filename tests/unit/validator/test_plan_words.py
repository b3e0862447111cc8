"""The outside tester's twelfth round, Finding 6 (/work/scratch/attack12-report.md): a
``rejection`` whose ``error`` is ``"zzz"`` was acked; a ``completion_approval`` dated before
the completion it approves was taken (the next turn starts at an approval's date, docs/adr/
0014); /health stayed ``ok`` while every message to a peer was refused for good. Now such a
word is refused ``bad_request`` as misconduct (the message proves it) and nothing of its log
is kept; /health names the peer the outbox is stuck on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tchain.flow_states import CLOCK_MARGIN_MS
from tchain.plans.execution import ZERO_COMPLETION
from tchain.proofs import verify_proof
from tchain.records import make_record
from tests.helpers import Clock
from tests.interbank_net import NetBank, all_sound
from tests.unit.validator.test_plan_attacks import Banks, lie, word
from tests.unit.validator.test_plan_flood import (
    net,  # noqa: F401  (the fixture)
    released,
)
from tests.unit.validator.test_plans import B1, B2, B3, state
from validator import health
from validator import plans as plans_module
from validator.flows import enqueue
from validator.sender import BATCH_BYTES, batches
from validator.stuck import STUCK_ATTEMPTS, stuck_peers


def _released(net: Banks) -> str:  # noqa: F811
    """p6's plan run to its await, its release 3 s after the plan's time: the plan id."""
    return released(net, before_release=3_000)[0]


def refused_as_misconduct(banks: Any, plan: str, docs: list[Any], proven: bool = True
                          ) -> str:
    """bank2's key sends bank1 ``docs`` after the proposal: refused ``bad_request``, kept
    (if ``proven``: the message alone shows it) as a misconduct proof against bank2 that
    verifies, and bank1's log unchanged. The reason."""
    before = state(banks[B1], plan).docs
    answer = lie(banks[B2], banks[B1], [before[0], *docs])
    assert (answer["type"], answer["error"]) == ("refused", "bad_request"), answer
    assert state(banks[B1], plan).docs == before
    proofs = [p for p in banks[B1].interbank.proofs() if p["type"] == "misconduct"
              and p["message"]["message"]["log"][1:] == [d.doc for d in docs]]
    assert len(proofs) == proven
    for proof in proofs:
        assert verify_proof(proof).culprit == banks[B2].key.public_key
    return str(answer["reason"])


@pytest.mark.parametrize("kind", ["rejection", "completion_rejection"])
def test_a_rejection_whose_error_is_no_wire_code_is_refused(net: Banks, kind: str  # noqa: F811
                                                            ) -> None:
    network, banks, _ = net
    plan = _released(net)
    fields: dict[str, Any] = {"error": "zzz", "reason": "made up"}
    if kind == "completion_rejection":
        fields.update(seq=3, completion=ZERO_COMPLETION)
    reason = refused_as_misconduct(banks, plan, [word(banks[B2], plan, kind, **fields)])
    assert "'zzz', not a §6 error code" in reason
    banks[B1].ledger.clock.now += 60_000
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def test_a_word_dated_before_its_completion_or_its_plan_is_refused(net: Banks  # noqa: F811
                                                                   ) -> None:
    """An approval of the release dated before the release by more than two clocks may
    differ, or a rejection dated before the plan, is refused; an approval dated before the
    release by less (bank2's clock a little behind bank1's) is taken."""
    network, banks, _ = net
    plan = _released(net)
    ex = state(banks[B1], plan)
    release = ex.instructions[2].completion
    assert release is not None
    early = word(banks[B2], plan, "completion_approval", time=release.time - CLOCK_MARGIN_MS - 1,
                 seq=2, completion=release.id)
    # the message alone shows it when it carries the release, else only bank1's log does
    assert "before the completion it answers" in refused_as_misconduct(
        banks, plan, [*ex.docs[1:], early])
    assert "before the completion it answers" in refused_as_misconduct(
        banks, plan, [early], proven=False)
    old = word(banks[B2], plan, "completion_rejection", time=ex.plan.time - CLOCK_MARGIN_MS - 1,
               seq=3, completion=ZERO_COMPLETION, error="expired", reason="made up")
    assert "before the plan's time" in refused_as_misconduct(banks, plan, [old])
    # within the margin: an honest bank's clock behind bank1's; bank2's real approval is in
    # the log, so this one is its equivocation (proven), not a misdated word
    skewed = word(banks[B2], plan, "completion_approval", time=release.time - CLOCK_MARGIN_MS,
                  seq=2, completion=release.id)
    assert lie(banks[B2], banks[B1], [ex.docs[0], skewed])["type"] == "ack"
    banks[B1].ledger.clock.now += 60_000
    network.run(50)
    assert {state(b, plan).state for b in (banks[B1], banks[B3])} == {"completed"}
    for b in banks.values():
        assert all(verify_proof(p).culprit == banks[B2].key.public_key
                   for p in b.interbank.proofs())
    all_sound(*banks.values(), chains_verify=True)


def test_health_names_a_peer_the_outbox_is_stuck_on(net: Banks) -> None:  # noqa: F811
    """Every plan message to bank3 refused (here: bank3 down) STUCK_ATTEMPTS times in a row:
    /health is degraded and says which peer, how many messages, and how old the oldest is;
    one failure less is not stuck."""
    banks = net[1]
    bank1 = banks[B1]
    now = bank1.ledger.clock()

    def queue(at: int) -> str:
        return bank1.ledger.store.write(lambda w: enqueue(w, bank1.key, B1, B3, "plan", at,
                                                          flow=None, give_up=None, log=[]))

    stuck, fresh = queue(now), queue(now + 1)
    for i in range(STUCK_ATTEMPTS):
        bank1.interbank.delivery_failed(stuck, f"{B3} answered 400: bad_request")
        if i < STUCK_ATTEMPTS - 2:
            bank1.interbank.delivery_failed(fresh, "down")
    bank1.ledger.clock.now += 90_000
    with bank1.ledger.store.read() as r:
        assert stuck_peers(r, bank1.ledger.clock()) == {B3: {
            "messages": 1, "oldest_ms": 90_000, "attempts": STUCK_ATTEMPTS,
            "last_error": f"{B3} answered 400: bad_request"}}
    app = Flask("health")
    app.extensions["tchain.bank"] = bank1  # the store and clock are all /health reads
    app.register_blueprint(health.blueprint)
    response = app.test_client().get("/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["outbox"]["stuck"][B3]["messages"] == 1
    assert body["problems"] == [f"1 message(s) to {B3} failed {STUCK_ATTEMPTS} times in a "
                                f"row, the oldest 90 s old: {B3} answered 400: bad_request"]


def test_health_is_ok_with_no_stuck_peer(tmp_path: Path) -> None:
    app = Flask("health")
    app.extensions["tchain.bank"] = NetBank(tmp_path / "b", B1, Clock())
    app.register_blueprint(health.blueprint)
    body = app.test_client().get("/health").get_json()
    assert (body["status"], body["outbox"]) == ("ok", {"backlog": 0, "stuck": {}})


def test_a_word_carrying_more_than_its_kind_needs_is_refused(net: Banks) -> None:  # noqa: F811
    """A word kept as its bank's equivocation is checked no further, so a liar's second
    approval could carry a hundred records and grow the log past one message: an approval
    carries the records of the addresses the plan names at its bank (none at bank2 here), a
    completion one receipt (docs/adr/0014, Update: attack 12)."""
    network, banks, _ = net
    plan = _released(net)
    record = make_record(banks[B2].key, address=f"mallory*{B2}",
                         owner=banks[B2].key.public_key, chain="ab" * 32, validator=B2)
    stuffed = word(banks[B2], plan, "approval", consents=[], records=[record] * 2)
    assert "carries 2 records, more than the 0" in refused_as_misconduct(banks, plan, [stuffed])
    banks[B1].ledger.clock.now += 60_000
    network.run(50)
    assert {state(b, plan).state for b in banks.values()} == {"completed"}
    all_sound(*banks.values(), chains_verify=True)


def test_a_log_past_the_bytes_of_one_message_is_never_held(
        net: Banks, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The safety net under tchain.plans.bounds: a log that would grow past MAX_LOG_BYTES is
    refused (limit_exceeded) and nothing of it kept, so no bank holds a log it could not
    send."""
    banks = net[1]
    plan = _released(net)
    before = state(banks[B1], plan).docs
    monkeypatch.setattr(plans_module, "MAX_LOG_BYTES", sum(len(d.raw) for d in before))
    late = word(banks[B2], plan, "rejection", error="expired", reason="one word more")
    answer = lie(banks[B2], banks[B1], [*before, late])
    assert (answer["type"], answer["error"]) == ("refused", "limit_exceeded"), answer
    assert state(banks[B1], plan).docs == before


def test_the_sender_cuts_batches_by_bytes() -> None:
    """Several plan logs to one peer are never posted in one body past its limit (413 for
    the whole batch, for ever): each batch holds BATCH_BYTES at most, a larger one alone."""
    def item(n: int) -> tuple[str, dict[str, Any]]:
        return str(n), {"message": {"message": {"log": "x" * n}}}

    big, small = item(BATCH_BYTES), item(100)
    assert [[m for m, _ in b] for b in batches([small, big, small, small])] == [
        [small[0]], [big[0]], [small[0], small[0]]]
