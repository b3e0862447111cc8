"""The running bank: its config, key and ledger, and the answers built from them.

One :class:`Bank` lives in each worker process (created by the app factory after the fork); its
store opens lazily on first use in that process.
"""

from __future__ import annotations

import threading
from typing import Any

from federation.records import make_record, make_well_known
from tchain.clock import now_ms
from tchain.errors import ForbiddenError, NotFoundError, UnknownChainError
from tchain.state import ChainState
from validator.audit import rebuild_books
from validator.coalesce import Coalescer
from validator.config import CONFIG_FILE, BankConfig, open_ledger
from validator.errors import ConfigError
from validator.interbank import Interbank
from validator.ledger import Ledger
from validator.plans import Plans
from validator.route import terms as correspondent_terms
from validator.sender import HANDOFF_MS, Sender
from validator.store import Reader

DEFAULT_SETTLE_DEADLINE = 30  # seconds a peer has to do its side of a cross-bank flow

__all__ = ["Bank"]


def _changed(config: BankConfig) -> tuple[int, int]:
    """Which config file is there and when it last changed (a saved config is a new file,
    BankConfig.save); zeros if it cannot be seen."""
    try:
        seen = (config.data / CONFIG_FILE).stat()
    except OSError:
        return 0, 0
    return seen.st_ino, seen.st_mtime_ns


class Bank:
    """A bank's state in one process; also the app's federation source.

    Args:
        config: the bank's data directory.
        settle_deadline: seconds a peer has to settle (``serve --settle-deadline``).
        fault: a deliberate fault for demonstrations and tests (``serve --fault``).
    """

    def __init__(self, config: BankConfig, *, settle_deadline: float | None = None,
                 fault: str | None = None, **store_options: Any) -> None:
        self.config = config
        deadline_s = DEFAULT_SETTLE_DEADLINE if settle_deadline is None else settle_deadline
        # A worker tries the messages of an intent at once (api.submit); the sender process
        # leaves them to it for HANDOFF_MS.
        self.ledger: Ledger = open_ledger(config, settle_deadline_ms=int(deadline_s * 1000),
                                          handoff_ms=HANDOFF_MS, **store_options)
        self.key = self.ledger.bank.key
        self.interbank = Interbank(self.ledger, fault=fault)
        self.plans = Plans(self.ledger)
        rebuild_books(self.ledger)  # once, for a store of an older version
        self.sender = Sender(self.interbank)
        # One batch decided at a time in this process. A batch is a long stretch of Python:
        # several at once in one worker only take turns at the GIL, and each one's plans go
        # stale under the others' commits and are decided again inside the write lock (what
        # it gained: docs/performance.md). Single intents do not take it: they are decided in
        # rounds of their own (below).
        self.deciding_batch = threading.Lock()
        # Single intents arriving together, decided together (validator/coalesce.py).
        self.singles = Coalescer(self.ledger)
        self._assets = (config.assets, _changed(config))

    def assets(self) -> tuple[str, ...]:
        """The codes of the assets the bank issues, as its config says now: `validator asset
        add` adds one while the bank serves (a stat of the config a call, read again only
        when it changed)."""
        assets, seen = self._assets
        now = _changed(self.config)
        if now != seen:
            try:
                assets = BankConfig.load(self.config.data).assets
            except ConfigError:
                return assets  # being replaced right now: the last one read stands
            self._assets = (assets, now)
        return assets

    @property
    def name(self) -> str:
        return self.config.name

    # --- federation ----------------------------------------------------------------------

    def well_known(self) -> dict[str, Any]:
        chain = self.ledger.bank_chain()
        if chain is None:
            raise NotFoundError("the bank's own chain does not exist; run validator init")
        with self.ledger.store.read() as r:
            peers = [{"name": p["name"], "key": p["key"], "url": p["url"]} for p in r.peers()]
            terms = correspondent_terms(r)
        return make_well_known(self.key, name=self.name, chain=chain, api_url=self.config.url,
                               assets=[f"{self.name}:{code}" for code in self.assets()],
                               peers=peers, now=now_ms(),
                               correspondent=None if terms is None else terms.to_dict())

    def _record(self, state: ChainState) -> dict[str, Any]:
        return make_record(self.key, address=state.address, owner=state.owner,
                           chain=state.chain, validator=self.name)

    def record_by_address(self, address: str) -> dict[str, Any] | None:
        with self.ledger.store.read() as r:
            chain = self.ledger.chain_of_address(r, address)
            state = None if chain is None else r.state(chain)
        return None if state is None else self._record(state)

    def record_by_id(self, key_or_chain: str) -> dict[str, Any] | None:
        with self.ledger.store.read() as r:
            state = r.state(key_or_chain)
            if state is None:
                chain = r.chain_by_owner(key_or_chain)
                state = None if chain is None else r.state(chain)
                if state is not None and state.owner != key_or_chain:
                    state = None  # a key a recovery waits to give the chain to: not yet its
        return None if state is None else self._record(state)

    # --- authenticated reads ------------------------------------------------------------

    def readable_state(self, r: Reader, chain_id: str, reader_key: str) -> ChainState:
        """The chain's state, if ``reader_key`` may read it: its owner or a regulator.

        Raises:
            NotFoundError: no such chain (404). ForbiddenError: not yours (403).
        """
        state = r.state(chain_id)
        if state is None:
            raise UnknownChainError(f"chain {chain_id} is not registered at {self.name}")
        if reader_key != state.owner and not r.is_regulator(reader_key):
            raise ForbiddenError(f"key {reader_key} may not read chain {chain_id}: only its "
                                 "owner and the bank's regulators may")
        return state

    def require_regulator(self, r: Reader, reader_key: str) -> None:
        if not r.is_regulator(reader_key):
            raise ForbiddenError(f"key {reader_key} is not a regulator of {self.name}")

    def require_regulator_or_peer(self, r: Reader, reader_key: str) -> None:
        if not r.is_regulator(reader_key) and \
                all(p["key"] != reader_key for p in r.peers()):
            raise ForbiddenError(f"key {reader_key} is neither a regulator nor a pinned peer of "
                                 f"{self.name}")

    # --- offers ---------------------------------------------------------------------------

    def offers(self, asset: str | None, after: str | None, limit: int
               ) -> list[dict[str, Any]]:
        return self.interbank.offers(asset, after, limit)
