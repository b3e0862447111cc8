"""The flow table: every legal move allowed, every other refused; records stored as before."""

from __future__ import annotations

import itertools

import pytest

from tchain.encoding import canonical
from tchain.flow_states import (
    ABSENT,
    INITIAL,
    TRANSITIONS,
    Flow,
    FlowEvent,
    FlowState,
    FlowTransitionError,
    FlowType,
    OfferRecord,
    OfferState,
    OutboxItem,
    next_state,
)

EVERY_MOVE = list(itertools.product(FlowType, FlowState, FlowEvent))
ID = "ab" * 32


def _flow(type_: FlowType, state: FlowState) -> Flow:
    return Flow(type_, state, ID, 3, "bank2.example", 1_000, "cd" * 32, None, None)


@pytest.mark.parametrize(("type_", "state", "event"), list(TRANSITIONS))
def test_every_legal_move_is_allowed(type_, state, event):
    after = TRANSITIONS[type_, state, event]
    assert next_state(type_, state, event) is after
    assert _flow(type_, state).moved(event).state is after


@pytest.mark.parametrize(("type_", "state", "event"),
                         [move for move in EVERY_MOVE if move not in TRANSITIONS])
def test_every_other_move_is_refused(type_, state, event):
    with pytest.raises(FlowTransitionError, match=f"cannot go from {state.value}"):
        next_state(type_, state, event)
    with pytest.raises(FlowTransitionError):
        _flow(type_, state).moved(event)


def test_the_table_is_the_documented_machine():
    assert INITIAL == {FlowType.TRANSFER: FlowState.PENDING, FlowType.TAKE: FlowState.PENDING,
                       FlowType.EXCHANGE: FlowState.AWAITING_PEER,
                       FlowType.LOCK: FlowState.PENDING}
    # nothing leaves a final state
    for (_, state, _), _ in TRANSITIONS.items():
        assert state not in (FlowState.SETTLED, FlowState.RELEASED)
    # every state a flow can be in is reached from where its type starts
    for type_ in FlowType:
        reached, frontier = {INITIAL[type_]}, [INITIAL[type_]]
        while frontier:
            state = frontier.pop()
            for (t, s, _), after in TRANSITIONS.items():
                if t is type_ and s is state and after not in reached:
                    reached.add(after)
                    frontier.append(after)
        assert FlowState.SETTLED in reached


def test_a_flows_state_changes_only_by_an_event():
    with pytest.raises(TypeError, match="only by its event"):
        _flow(FlowType.TRANSFER, FlowState.PENDING).moved(FlowEvent.CREDITED,
                                                           state=FlowState.RELEASED)


STORED = [
    # a transfer as recorded now, and one recorded before flows kept their payee
    {"type": "transfer", "state": "pending", "chain": ID, "height": 4, "peer": "b2",
     "deadline": 9, "message": "ef" * 32, "reason": None, "receipt": None, "payee": ID},
    {"type": "transfer", "state": "settled", "chain": ID, "height": 4, "peer": "b2",
     "deadline": 9, "message": "ef" * 32, "reason": None, "receipt": {"entry": {}},
     "settled_height": 5},
    {"type": "take", "state": "released", "chain": ID, "height": 4, "peer": "b2",
     "deadline": 9, "message": None, "reason": "b2 refused: no", "receipt": None,
     "offer": ID, "released_height": 6},
    # an exchange settled after its deadline: its proof dropped, but the field kept as null
    {"type": "exchange", "state": "settled", "chain": ID, "height": 4, "peer": "b2",
     "deadline": 9, "message": "ef" * 32, "offer": ID, "take": {"entry": {}},
     "answers": [{"a": 1}], "receipt": {"entry": {}}, "reason": "late", "proof": None},
    # a field this version does not know is kept as it is
    {"type": "transfer", "state": "pending", "chain": ID, "height": 4, "peer": "b2",
     "deadline": 9, "message": "ef" * 32, "reason": None, "receipt": None, "later": [1]},
]


@pytest.mark.parametrize("stored", STORED, ids=lambda d: f"{d['type']}-{d['state']}")
def test_a_stored_flow_reads_and_writes_back_the_same_bytes(stored):
    flow = Flow.from_dict(stored)
    assert canonical(flow.to_dict()) == canonical(stored)
    assert flow.state == stored["state"]  # an enum of str: equal to the stored value


def test_a_new_flow_has_the_fields_it_always_had():
    flow = Flow.start(FlowType.EXCHANGE, chain=ID, height=1, peer="b2", deadline=5,
                      message=ID, offer=ID, take={"entry": {}}, answers=())
    assert flow.to_dict() == {"type": "exchange", "state": "awaiting_peer", "chain": ID,
                              "height": 1, "peer": "b2", "deadline": 5, "message": ID,
                              "offer": ID, "take": {"entry": {}}, "answers": [],
                              "receipt": None, "reason": None}
    assert flow.timers() == {"flows": 6}
    assert flow.payee is ABSENT


def test_outbox_items_and_offers_read_and_write_back_the_same_bytes():
    item = {"peer": "b2", "message": {"message": {"type": "transfer"}}, "attempts": 2,
            "next_try": 7, "give_up": None, "flow": ID, "last_error": "down"}
    assert OutboxItem.from_dict(item).to_dict() == item
    failed = OutboxItem.from_dict(item).failed(100, "x" * 600)
    assert (failed.attempts, failed.next_try, len(failed.last_error or "")) == (3, 2_100, 500)
    waiting = OutboxItem.from_dict(item).failed(100, "pending: ...", waiting=True)
    assert waiting.to_dict() == {**item, "attempts": 3, "next_try": 2_100,
                                 "last_error": "pending: ...", "waiting": True}
    assert OutboxItem.from_dict(waiting.to_dict()) == waiting
    assert not waiting.failed(200, "down").waiting  # a failure after it: counted again
    offer = {"validator": "b1", "offer": {"entry": {}}, "state": "open", "expires": 9,
             "sell": "b1:USD", "buy": "b2:EUR"}
    record = OfferRecord.from_dict(offer)
    assert record.to_dict() == offer and record.is_open
    assert record.closed().state is OfferState.CLOSED and not record.closed().is_open
    assert record.closed().closed() == record.closed()  # closing twice changes nothing
