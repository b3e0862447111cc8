"""``GET /metrics``: what the bank is doing, in Prometheus' text format (prometheus-client).

Two kinds of figures, kept two ways:

- **Counted as requests pass**: requests by endpoint and status, intents accepted and refused
  by code, how long each group commit of the store took. Each worker process counts its own.
  Under ``serve`` the workers are processes forked by one master, so they count in
  prometheus-client's multiprocess mode: each writes its counts to files of its own in the
  bank's ``metrics/`` folder (the master names it in ``PROMETHEUS_MULTIPROC_DIR`` and empties
  it at each start, validator/serving/master.py), and whichever worker answers a scrape adds
  up every worker's files, those of workers that died too: a count never goes back when a
  worker is replaced, only when the bank is served again.
- **Read from the store when scraped**: the outbox waiting for each peer, the flows in flight
  with each peer, the holds open, the proofs kept, the store's reader slots. The store is
  shared by every process, so any worker reads the same; each is found through what is open
  now (the outbox, the holds, the timers), never by reading every flow ever kept.

The app alone (in-process, as the tests run it) counts in memory, in a registry of its own.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

import prometheus_client
from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from tchain.flow_states import Flow, FlowState
from validator.bank import Bank
from validator.store import MAX_READERS, Reader

__all__ = ["METRICS_DIR", "Metrics", "blueprint", "prepare_folder"]

METRICS_DIR = "metrics"  # in the bank's data directory
# A flow is in flight from the hold or the settlement that opens it until its peer's answer
# closes it (tchain/flow_states.py).
_HELD_FLOWS = ("payment", "take", "lock")  # the kinds of holds that wait on a peer

blueprint = Blueprint("metrics", __name__)


def prepare_folder(data: str | os.PathLike[str]) -> str:
    """Empty the bank's metrics folder (made if missing) and name it to prometheus-client
    for this process and the ones it forks; the master calls this once it holds the data
    directory's lock, before it forks, so no other process of the bank writes there."""
    folder = os.path.join(os.fspath(data), METRICS_DIR)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


class Metrics:
    """The counts of one worker process (see the module docstring).

    Args:
        folder: the multiprocess folder (``serve``), or None to count in memory.
    """

    def __init__(self, folder: str | None) -> None:
        self.folder = folder
        if folder is not None:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR") != folder:
                raise RuntimeError(f"the metrics folder {folder} is not the one named in "
                                   "PROMETHEUS_MULTIPROC_DIR (prepare_folder names it)")
            if values.ValueClass is values.MutexValue:
                # prometheus-client picks where values live when it is first imported, and
                # the master imported it before it named the folder: values in files now
                # (as prometheus-client's own multiprocess tests set it).
                values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        # In multiprocess mode nothing is registered: the values are in the files.
        own = None if folder is not None else CollectorRegistry(auto_describe=True)
        self.registry = own
        self.requests = Counter(
            "tchain_http_requests", "HTTP requests answered, by endpoint (the route, or "
            "(none) when no route matched, or (server) when the HTTP server refused it "
            "before the application saw it) and status code.",
            ["endpoint", "code"], registry=own)
        self.accepted = Counter(
            "tchain_intents_accepted", "Signed intents accepted (registrations included).",
            registry=own)
        self.refused = Counter(
            "tchain_intents_refused", "Signed intents refused, by error code (docs/protocol.md "
            "§6).", ["code"], registry=own)
        self.commits = Histogram(
            "tchain_store_commit_seconds", "Time of each group commit of the store: the works "
            "it holds, then the fsync.", registry=own,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5, 10.0))

    def answered(self, endpoint: str, status: int) -> None:
        self.requests.labels(endpoint, str(status)).inc()

    def intents(self, accepted: int = 0, refused: tuple[str, ...] | list[str] = ()) -> None:
        if accepted:
            self.accepted.inc(accepted)
        for code in refused:
            self.refused.labels(code).inc()

    def committed(self, seconds: float, _works: int) -> None:
        self.commits.observe(seconds)

    def exposition(self, bank: Bank) -> bytes:
        """One scrape: every worker's counts and what the store holds now."""
        scrape = CollectorRegistry(auto_describe=False)
        if self.registry is not None:
            scrape.register(self.registry)
        else:
            MultiProcessCollector(scrape, path=self.folder)  # type: ignore[no-untyped-call]
        scrape.register(_StoreCollector(bank))
        return prometheus_client.generate_latest(scrape)


class _StoreCollector(Collector):
    """The figures read from the store at each scrape."""

    def __init__(self, bank: Bank) -> None:
        self._bank = bank

    def describe(self) -> list[Metric]:
        return []  # read only when collected

    def collect(self) -> Iterator[Metric]:
        store = self._bank.ledger.store
        with store.read() as r:
            backlog = Tally(str(item["peer"]) for _, item in r.records("outbox"))
            flows = _flows_in_flight(r)
            holds = r.count("holds")
            proofs = r.count("proofs")
        outbox = GaugeMetricFamily("tchain_outbox_backlog", "Messages waiting in the outbox "
                                   "for each peer bank.", labels=["peer"])
        for peer, count in sorted(backlog.items()):
            outbox.add_metric([peer], count)
        yield outbox
        in_flight = GaugeMetricFamily(
            "tchain_flows_in_flight", "Cross-bank flows waiting on a peer bank: transfers, "
            "takes and locks holding a customer's value, exchanges awaiting the peer's "
            "settlement before their deadline.", labels=["peer", "type"])
        for (peer, kind), count in sorted(flows.items()):
            in_flight.add_metric([peer, kind], count)
        yield in_flight
        yield GaugeMetricFamily("tchain_holds_open", "Holds open on the bank's chains "
                                "(cross-bank payments in flight, open offers and takes).",
                                value=holds)
        yield GaugeMetricFamily("tchain_proofs_kept", "Proofs of peers' misbehaviour kept.",
                                value=proofs)
        plans = GaugeMetricFamily("tchain_plans", "Execution plans kept here, by state "
                                  "(docs/protocol.md §14).", labels=["state"])
        for state, count in sorted(self._bank.plans.states().items()):
            plans.add_metric([state], count)
        yield plans
        yield GaugeMetricFamily("tchain_store_reader_slots_in_use", "LMDB reader slots taken "
                                "now, by every process of the bank.",
                                value=store.reader_slots())
        yield GaugeMetricFamily("tchain_store_reader_slots_max", "LMDB reader slots there "
                                "are.", value=MAX_READERS)


def _flows_in_flight(r: Reader) -> Tally[tuple[str, str]]:
    """Flows waiting on a peer, by (peer, type): a transfer or take whose hold is open and
    still waits, an exchange whose deadline timer is still set and whose peer has not
    settled. Found through the open holds and the timers, not every flow kept."""
    found: Tally[tuple[str, str]] = Tally()
    for _, hold_id, hold in r.open_holds():
        if hold.kind in _HELD_FLOWS:
            flow = r.record("flows", hold_id)
            if flow is not None and Flow.from_dict(flow).waiting_on_peer:
                found[str(flow["peer"]), str(flow["type"])] += 1
    for flow_id, _ in r.due("flows", 2**62):
        flow = r.record("flows", flow_id)
        if flow is not None and Flow.from_dict(flow).state is FlowState.AWAITING_PEER:
            found[str(flow["peer"]), str(flow["type"])] += 1
    return found


def install(app: Flask, folder: str | None) -> Metrics:
    """Count every answer of ``app`` and serve ``GET /metrics``."""
    metrics = Metrics(folder)
    app.extensions["tchain.metrics"] = metrics
    app.extensions["tchain.bank"].ledger.store.on_commit = metrics.committed

    @app.after_request
    def count(response: Response) -> Response:
        rule = request.url_rule
        metrics.answered(rule.rule if rule is not None else "(none)", response.status_code)
        return response

    app.register_blueprint(blueprint)
    return metrics


def of(app: Any) -> Metrics:
    metrics: Metrics = app.extensions["tchain.metrics"]
    return metrics


@blueprint.get("/metrics")
def scrape() -> Response:
    body = of(current_app).exposition(current_app.extensions["tchain.bank"])
    return Response(body, content_type=prometheus_client.CONTENT_TYPE_LATEST)
