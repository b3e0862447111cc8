"""``GET /health``: whether this bank can do its work, for its operator's monitoring.

Public and cheap: one read of the store, the LMDB reader table, and the outbox sender's status
that the master keeps in shared memory (validator/serving/supervision.py). 200 with
``"status": "ok"``, or 503 with ``"status": "degraded"`` and one sentence per problem: the
store cannot be read, the sender is not running or has not begun a round for
:data:`SENDER_SILENT_MS`, the reader slots are nearly all taken (a read then fails), or
messages to a peer failed many times in a row (refused, answered with an error, or not
answered: validator.stuck), per peer with their count and the oldest one's age.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from tchain.encoding import canonical
from tchain.errors import StoreError
from validator.bank import Bank
from validator.store import MAX_READERS
from validator.stuck import stuck_peers

__all__ = ["READERS_HIGH", "SENDER_SILENT_MS", "blueprint"]

blueprint = Blueprint("health", __name__)

# A sender's round posts to each peer with waiting messages (each exchange bounded whole:
# validator.sender.ANSWER_SECONDS) before it begins the next: silent this long, it is stuck.
SENDER_SILENT_MS = 60_000
READERS_HIGH = MAX_READERS * 9 // 10


@blueprint.get("/health")
def health() -> Response:
    bank: Bank = current_app.extensions["tchain.bank"]
    store = bank.ledger.store
    problems: list[str] = []
    report: dict[str, Any] = {}
    try:
        with store.read() as r:
            backlog: int | None = r.count("outbox")
            stuck = stuck_peers(r, bank.ledger.clock())
        slots: int | None = store.reader_slots()
        report["store"] = {"open": True, "ok": True}
    except StoreError as e:
        backlog = slots = None
        stuck = {}
        report["store"] = {"open": store.is_open, "ok": False}
        problems.append(f"the store cannot be read: {e.message}")
    report["readers"] = {"in_use": slots, "max": MAX_READERS}
    if slots is not None and slots >= READERS_HIGH:
        problems.append(f"{slots} of the store's {MAX_READERS} reader slots are taken")
    report["outbox"] = {"backlog": backlog, "stuck": stuck}
    for peer, at in stuck.items():
        problems.append(f"{at['messages']} message(s) to {peer} failed {at['attempts']} times "
                        f"in a row, the oldest {at['oldest_ms'] // 1000} s old: "
                        f"{at['last_error']}")
    sender = current_app.extensions.get("tchain.sender")  # None: not run by `serve`
    report["sender"] = None if sender is None else sender.report()
    if sender is not None:
        if not report["sender"]["alive"]:
            problems.append("the outbox sender is not running; the master starts it again")
        elif report["sender"]["last_beat_ms_ago"] > SENDER_SILENT_MS:
            problems.append("the outbox sender has not begun a round for "
                            f"{report['sender']['last_beat_ms_ago'] // 1000} s")
    report["status"] = "degraded" if problems else "ok"
    report["problems"] = problems
    return Response(canonical(report), status=503 if problems else 200,
                    mimetype="application/json")
