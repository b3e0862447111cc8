"""The peers our outbox is stuck on, for ``GET /health`` (the outside tester's twelfth round,
Finding 6: a bank whose every ``plan`` message was refused with 400 for good still reported
``"problems": []``).

A message delivered is dropped from the outbox; one refused, answered with an error, or not
answered at all stays, its failed tries counted (``attempts``, backed off). One answered
``pending`` (a correspondent waiting on the next bank, a take in its offer's window, a plan's
transfer not yet due) is asked again, backed off too, but is not stuck: its peer answers. So
a message with STUCK_ATTEMPTS failed tries in a row is stuck, and the operator is told, per
peer, how many are and how old the oldest is, with the last error. Cheap: one page of the
outbox (its first MAX_SCANNED records by id, a sample of a backlog, not every message queued).
"""

from __future__ import annotations

from typing import Any

from tchain.flow_states import OutboxItem
from validator.store import Reader

__all__ = ["MAX_SCANNED", "STUCK_ATTEMPTS", "stuck_peers"]

STUCK_ATTEMPTS = 10  # failed tries in a row: some 2.5 min of them (250 ms doubling to 30 s)
MAX_SCANNED = 500  # outbox records read for one report


def stuck_peers(r: Reader, now: int) -> dict[str, dict[str, Any]]:
    """Per peer with stuck messages: how many (``messages``), the oldest one's age by its
    date (``oldest_ms``), the most failed tries of one (``attempts``) and the last error of
    that one."""
    out: dict[str, dict[str, Any]] = {}
    for _, record in r.records_page("outbox", None, MAX_SCANNED):
        item = OutboxItem.from_dict(record)
        if item.attempts < STUCK_ATTEMPTS or item.waiting:  # (pending: answered, not stuck)
            continue
        age = max(0, now - int(item.message["message"]["time"]))
        peer = out.setdefault(item.peer, {"messages": 0, "oldest_ms": 0, "attempts": 0,
                                          "last_error": None})
        peer["messages"] += 1
        peer["oldest_ms"] = max(peer["oldest_ms"], age)
        if item.attempts >= peer["attempts"]:
            peer["attempts"], peer["last_error"] = item.attempts, item.last_error
    return dict(sorted(out.items()))
