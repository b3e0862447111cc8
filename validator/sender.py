"""The outbox sender: delivers queued peer messages and runs the flows' deadlines.

It runs as one process beside the workers (forked and kept running by ``tchain validator
serve``'s master, validator/serving/master.py), and a worker that has just queued a message
also tries it once at once, so a payment between two live banks completes within the
customer's request. Both may deliver the same message: the peer answers a repeat with the same
bytes and :meth:`Interbank.apply_answer` applies an answer once.

No HTTP call is ever made inside a write transaction: the sender reads the message, closes the
read, posts, and only then opens a write to apply the answer or count the failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests

from federation.asking import Answer, AnswerCut, ask, bounded_session
from tchain.auth import authorization_header
from tchain.encoding import canonical, encode_built, parse
from tchain.errors import TChainError
from tchain.messages import Message
from validator.interbank import Interbank

__all__ = ["AT_ONCE_PER_PEER", "BATCH_BYTES", "HANDOFF_MS", "PEER_MESSAGES_PATH", "Sender",
           "batches"]

log = logging.getLogger("tchain.sender")

PEER_MESSAGES_PATH = "/v1/peer/messages"
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
# The whole exchange with a peer, its answer read to the end (federation.asking): a peer that
# trickles its answer within READ_TIMEOUT a byte would otherwise hold the sender, and every
# delivery to every other peer behind it, for as long as it liked.
ANSWER_SECONDS = 10.0
# Messages one worker process tries at once to one peer at a time (api.submit); another waits
# for a turn at most AT_ONCE_WAIT s (a peer that answers in milliseconds gives one at once),
# then is left to the sender (it is due after HANDOFF_MS). A peer that answers slowly, or not
# at all, so holds at most this many of a worker's threads for the bound above, whatever its
# customers' payments to it (attack 23: 24 of them took all 16, and the bank answered nobody
# for ten seconds).
AT_ONCE_PER_PEER = 2
AT_ONCE_WAIT = 0.5
# Peers the sender delivers to at the same time, each one exchange at a time: a slow peer
# holds its own deliveries, not the others' (attack 23: a route 1->2->3 took 18 s, not 0.7,
# behind a peer that trickled its answers).
SENDER_THREADS = 8
BATCH = 500  # messages per request to a peer
# bytes of messages per request: well within the peer's body limit (validator.app.MAX_BODY,
# 1 MiB), so a batch of plan logs, each up to validator.plans.MAX_LOG_BYTES, is never
# refused whole as too large, and retried so for ever (docs/adr/0014, Update: attack 12)
BATCH_BYTES = 1 << 19
# How long this process leaves a new message to the worker that queued it and tries it at
# once (it takes well under a second unless the peer is slow or down: then the worker counts
# a failure and the backoff applies). Sending it twice is harmless, but doubles both banks' work.
HANDOFF_MS = 3_000


_Item = tuple[str, dict[str, Any]]  # (outbox id, record)


class Sender:
    """Delivers outbox messages of one bank to its pinned peers."""

    def __init__(self, interbank: Interbank) -> None:
        self.interbank = interbank
        self.ledger = interbank.ledger
        self.http = bounded_session()
        self._lock = threading.Lock()
        self._at_once: dict[str, threading.BoundedSemaphore] = {}  # by peer
        self._busy: set[str] = set()  # peers the sender's threads deliver to now
        self._pool: ThreadPoolExecutor | None = None

    def try_at_once(self, message_ids: Iterable[str]) -> None:
        """A worker's try of the messages its customer's intent made, before it answers:
        delivered now, unless AT_ONCE_PER_PEER of this process's threads are still waiting
        on that peer after AT_ONCE_WAIT s; then left to the sender."""
        peers, by_peer = self._read(message_ids)
        for name, items in by_peer.items():
            with self._lock:
                gate = self._at_once.setdefault(
                    name, threading.BoundedSemaphore(AT_ONCE_PER_PEER))
            if not gate.acquire(timeout=AT_ONCE_WAIT):
                log.info("%d message(s) to %s left to the sender: %d threads wait on it",
                         len(items), name, AT_ONCE_PER_PEER)
                continue
            try:
                self._deliver_to_peer(name, peers[name], items)
            finally:
                gate.release()

    def _read(self, message_ids: Iterable[str]
              ) -> tuple[dict[str, dict[str, Any] | None], dict[str, list[_Item]]]:
        """The outbox records of ``message_ids`` still queued, by peer, and each peer's
        record (None: no longer pinned), in one read."""
        by_peer: dict[str, list[_Item]] = {}
        with self.ledger.store.read() as r:
            for message_id in message_ids:
                item = r.record("outbox", message_id)
                if item is not None:
                    by_peer.setdefault(item["peer"], []).append((message_id, item))
            peers = {name: r.peer(name) for name in by_peer}
        return peers, by_peer

    def _deliver_to_peer(self, name: str, peer: dict[str, Any] | None, items: list[_Item]
                         ) -> None:
        """One peer's messages: one alone, several in batches (one request and one group
        commit on each side for up to BATCH messages)."""
        if peer is None:
            self.interbank.deliveries_failed([(m, f"{name} is not a pinned peer")
                                              for m, _ in items])
        elif len(items) == 1:
            self._deliver_one(peer, *items[0])
        else:
            for batch in batches(items):
                self._deliver_batch(peer, batch)

    def deliver(self, message_id: str) -> str | None:
        """Try one delivery of an outbox message; return what its answer did, or None."""
        peers, by_peer = self._read([message_id])
        if not by_peer:
            return None  # answered meanwhile
        [(name, [(_, item)])] = by_peer.items()
        peer = peers[name]
        if peer is None:
            self.interbank.delivery_failed(message_id, f"{name} is not a pinned peer")
            return None
        return self._deliver_one(peer, message_id, item)

    def _deliver_one(self, peer: dict[str, Any], message_id: str, item: dict[str, Any]
                     ) -> str | None:
        url = peer["url"].rstrip("/") + PEER_MESSAGES_PATH
        path = urlsplit(url).path
        body = canonical(item["message"])
        header = authorization_header(self.ledger.bank.key, "POST", path, "", body,
                                      self.ledger.clock(), bank=peer["name"])
        try:
            response = self._post(url, body, header)
        except requests.RequestException as e:
            self._failed(message_id, item, f"cannot reach {item['peer']}: {_failure(e)}")
            return None
        if response.status != 200:
            self._failed(message_id, item, f"{item['peer']} answered {response.status}: "
                                           f"{_text(response.body)}")
            return None
        try:
            done = self.interbank.apply_answer(message_id, parse(response.body))
        except TChainError as e:
            self._failed(message_id, item, f"{item['peer']}'s answer was refused: {e.message}")
            return None
        log.info("%s to %s: %s", item["message"]["message"]["type"], item["peer"], done)
        return done

    def _post(self, url: str, body: bytes, header: str) -> Answer:
        return ask(self.http, "POST", url, seconds=ANSWER_SECONDS, data=body,
                   timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                   headers={"Authorization": header, "Content-Type": "application/json"})

    def _failed(self, message_id: str, item: dict[str, Any], error: str) -> None:
        log.warning("%s to %s (attempt %d): %s", item["message"]["message"]["type"],
                    item["peer"], item["attempts"] + 1, error)
        self.interbank.delivery_failed(message_id, error)

    def deliver_all(self, message_ids: Iterable[str]) -> None:
        """Deliver messages, each peer's together (_deliver_to_peer)."""
        peers, by_peer = self._read(message_ids)
        for name, items in by_peer.items():
            self._deliver_to_peer(name, peers[name], items)

    def _deliver_batch(self, peer: dict[str, Any], items: list[_Item]) -> None:
        url = peer["url"].rstrip("/") + PEER_MESSAGES_PATH + "/batch"
        # our own messages, as stored: not walked again for non-protocol values
        body = encode_built({"messages": [item["message"] for _, item in items]})
        header = authorization_header(self.ledger.bank.key, "POST", urlsplit(url).path,
                                      "", body, self.ledger.clock(), bank=peer["name"])
        ids = [message_id for message_id, _ in items]
        try:
            response = self._post(url, body, header)
        except requests.RequestException as e:
            error = f"cannot reach {peer['name']}: {_failure(e)}"
            self.interbank.deliveries_failed([(m, error) for m in ids])
            return
        if response.status in (404, 405):  # a peer without batches: one at a time
            for message_id in ids:
                self.deliver(message_id)
            return
        try:
            if response.status != 200:
                raise TChainError(f"{peer['name']} answered {response.status}: "
                                  f"{_text(response.body)}")
            answers = parse(response.body).get("answers")
            if not isinstance(answers, list) or len(answers) != len(items) or \
                    not all(isinstance(a, dict) for a in answers):
                raise TChainError(f"{peer['name']} answered {len(items)} messages with "
                                  f"something else than {len(items)} answers")
        except (TChainError, AttributeError) as e:
            self.interbank.deliveries_failed([(m, str(e)) for m in ids])
            return
        applied = [(m, a) for m, a in zip(ids, answers, strict=True) if "error" not in a]
        refused = [(m, f"{peer['name']} refused it: {a.get('message')}")
                   for m, a in zip(ids, answers, strict=True) if "error" in a]
        done = self.interbank.apply_answers(applied, read=Message.trusted)  # parse() checked them
        for (message_id, _), outcome in zip(applied, done, strict=True):
            if isinstance(outcome, TChainError):
                refused.append((message_id, f"{peer['name']}'s answer was refused: "
                                            f"{outcome.message}"))
        for message_id, error in refused:
            log.warning("message %s to %s: %s", message_id, peer["name"], error)
        if refused:
            self.interbank.deliveries_failed(refused)
        log.info("%d messages to %s: %d applied", len(items), peer["name"],
                 len(items) - len(refused))

    def run_once(self) -> None:
        """Apply passed deadlines, then start delivering every due message once, each peer's
        on a thread of its own (SENDER_THREADS at most); a peer still being delivered to from
        an earlier round is left until it is done."""
        for line in self.interbank.tick():
            log.warning("%s", line)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(SENDER_THREADS, thread_name_prefix="sender")
        peers, by_peer = self._read(self.interbank.due())
        for name, items in by_peer.items():
            with self._lock:
                if name in self._busy:
                    continue
                self._busy.add(name)
            self._pool.submit(self._deliver_in_turn, name, peers[name], items)

    def _deliver_in_turn(self, name: str, peer: dict[str, Any] | None, items: list[_Item]
                         ) -> None:
        try:
            self._deliver_to_peer(name, peer, items)
        except Exception:  # keep sending: one bad delivery must not stop this peer's outbox
            log.exception("delivery to %s failed", name)
        finally:
            with self._lock:
                self._busy.discard(name)

    def close(self) -> None:
        """Wait for the deliveries in flight (each bounded by ANSWER_SECONDS), then stop the
        sender's threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def run(self, stop: threading.Event, interval: float = 0.2,
            heartbeat: Callable[[], bool] = lambda: True) -> None:
        """Loop until ``stop`` is set; a failing round is logged, never fatal.
        ``heartbeat`` is called as each round begins (the master shows its time in
        ``GET /health``); the loop ends when it answers False (the master is gone)."""
        while not stop.is_set():
            if not heartbeat():
                log.error("the master is gone; the sender stops")
                return
            try:
                self.run_once()
            except Exception:  # keep sending: one bad round must not stop the bank's outbox
                log.exception("sender round failed")
            stop.wait(interval)
        self.close()


def batches(items: list[_Item]) -> Iterator[list[_Item]]:
    """``items`` (outbox id, record) in order, cut into batches of at most BATCH messages and
    BATCH_BYTES (a message larger than that goes alone)."""
    batch: list[_Item] = []
    size = 0
    for item in items:
        n = len(encode_built(item[1]["message"]))
        if batch and (len(batch) == BATCH or size + n > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def _failure(error: requests.RequestException) -> str:
    """Why a post failed, for the outbox's last error: ours in words, requests' by name."""
    if isinstance(error, AnswerCut):
        return str(error)
    return type(error).__name__


def _text(body: bytes) -> str:
    return body[:300].decode("utf-8", "replace")
