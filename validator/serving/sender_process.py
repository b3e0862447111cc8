"""The sender process: the bank's outbox sender and clock, beside the workers.

Forked and kept running by the master (validator/serving/master.py), as the workers are
(validator/serving/worker.py). Apart from validator/sender.py so that the sender does not
import the bank that holds it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from validator.bank import Bank
from validator.config import BankConfig
from validator.serving.supervision import STOP_SIGNALS

__all__ = ["run_sender"]

log = logging.getLogger("tchain.sender")



def run_sender(data: str, app_config: dict[str, Any],
               heartbeat: Callable[[], bool] = lambda: True) -> None:
    """The sender process's main: build the bank from its data directory and loop until
    SIGTERM or SIGINT (see :meth:`Sender.run` for ``heartbeat``)."""
    bank = Bank(BankConfig.load(data), settle_deadline=app_config.get("SETTLE_DEADLINE"),
                fault=app_config.get("FAULT"), **app_config.get("STORE_OPTIONS", {}))
    stop = threading.Event()

    def stopping(*_: Any) -> None:
        # Block further stops first: a second signal (the group's and the master's come
        # together) would run this again inside Event.set, which holds a lock it cannot take
        # twice (found by the storm of stop signals: a RecursionError, the sender's traceback).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        stop.set()

    for sig in STOP_SIGNALS:
        signal.signal(sig, stopping)
    if bank.interbank.fault:
        log.warning("FAULT %s: this bank cheats on purpose, for demonstrations and tests",
                    bank.interbank.fault)
    bank.sender.run(stop, heartbeat=heartbeat)
