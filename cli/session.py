"""What a customer does with a wallet: register, sync and verify, pay, issue, redeem, look up.

Every entry the bank returns is verified (PROTOCOL.md §5) before the wallet keeps it. The wallet
never trusts the bank's word for its balance: it computes balances from its verified copy and
refuses if the bank's answer differs. If the bank ever serves an entry that differs from one the
wallet already holds at that height, the two signed entries are an equivocation proof: the
session writes it to a file and stops with :class:`SecurityError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cli.banks import Banks
from cli.chainsync import catch_up, keep, open_copy, pull, rebuild
from cli.client import BankClient
from cli.counterparties import Party
from cli.errors import BankError, SecurityError, UnreachableError, WalletError
from cli.flowids import resolve_flow
from cli.recoverycode import new_recovery_code, typed_code
from cli.routes import RoutePlan, payee_record, plan_route
from cli.shortids import resolve_prefix
from cli.wallet import BankInfo, Wallet
from federation.records import verify_record, verify_well_known
from tchain.clock import now_ms
from tchain.encoding import parse
from tchain.errors import (
    EncodingError,
    NotFoundError,
    SignatureError,
    TChainError,
    UnknownAssetError,
    UnknownOfferError,
    VerificationError,
)
from tchain.intents import register_request, sign_intent
from tchain.keys import SigningKey
from tchain.model import SignedEntry, fill_price
from tchain.state import ChainState
from tchain.values import UAI, parse_address, parse_positive_amount
from tchain.verify import ChainVerifier

__all__ = ["Registered", "Session", "Submission", "SyncReport"]


class Registered(NamedTuple):
    address: str
    recovery_code: str | None  # None: registered without a KYC record


@dataclass(frozen=True)
class SyncReport:
    """The verified chain after a sync; ``offline`` says why the bank was not asked (it
    could not be reached) when the report is the wallet's own copy as it stood."""

    state: ChainState
    new_entries: int
    verifier: ChainVerifier
    offline: str | None = None


@dataclass(frozen=True)
class Submission:
    """What the bank made of a signed intent: its entries (ours first) and, for a flow with a
    peer bank, the flow's state (``pending`` when the answer was 202)."""

    entries: list[SignedEntry]
    flow: dict[str, Any] | None


class Session:
    """A wallet unlocked for use."""

    def __init__(self, wallet: Wallet, key: SigningKey, *,
                 pending_key: SigningKey | None = None) -> None:
        self.wallet = wallet
        self.key = key
        self.pending_key = pending_key  # a rotation not confirmed yet (cli.rotation)
        self._banks: Banks | None = None

    # --- registering --------------------------------------------------------------------

    def register(self, name: str, url: str, *, legal_name: str | None,
                 params: dict[str, Any] | None = None) -> Registered:
        """Open this wallet's chain at the bank at ``url``; return the address and, with a
        KYC record, the recovery code in it (cli.recoverycode), to be shown once."""
        if self.wallet.chain is not None:
            raise WalletError(f"this wallet already has the chain {self.wallet.address}")
        client = BankClient(url, self.key)
        document = verify_well_known(client.well_known())
        code = None if legal_name is None else new_recovery_code()
        kyc = None if legal_name is None else {"legal_name": legal_name, "recovery_code": code}
        # Signed for the bank whose signed document this URL serves: no other bank takes it.
        answer = client.register(register_request(self.key, name, now_ms(),
                                                  bank=document["name"], kyc_record=kyc,
                                                  params=params))
        verifier = ChainVerifier(document["public_key"], document["name"])
        try:
            genesis = verifier.feed(answer)
        except VerificationError as e:
            raise SecurityError(f"the bank's genesis does not verify: {e.message}") from e
        assert verifier.state is not None
        if verifier.state.owner != self.key.public_key:
            raise SecurityError("the bank's genesis names another owner key")
        bank = BankInfo(document["name"], url.rstrip("/"), document["public_key"],
                        document["chain"])
        self.wallet.replace_entries([genesis.to_bytes()])
        self.wallet = self.wallet.registered(name=name, chain=genesis.id,
                                             address=verifier.state.address, bank=bank)
        return Registered(verifier.state.address, code)

    def ask_recovery(self, address: str, url: str, *, legal_name: str, recovery_code: str
                     ) -> tuple[str, int]:
        """Ask the bank at ``url`` to give the chain of ``address`` to this (new) wallet's
        key, with the chain's KYC record; return the chain id and when the key will own it
        (ms), unless the chain's current key cancels first. The wallet keeps the chain, with
        no copy yet: ``sync --rebuild`` fetches and verifies it once the key owns it."""
        if self.wallet.chain is not None:
            raise WalletError(f"this wallet already has the chain {self.wallet.address}; "
                              "recover into a new wallet (tchain --wallet NEW wallet create)")
        client = BankClient(url, self.key)
        document = verify_well_known(client.well_known())
        record = verify_record(client.lookup("name", address), document["public_key"])
        intent = sign_intent(self.key, "recover", record["chain"], 0, now_ms(),
                             {"owner": self.key.public_key})
        kyc = {"legal_name": legal_name, "recovery_code": typed_code(recovery_code)}
        answer = client.recover(record["chain"], {**intent, "kyc_record": kyc})
        bank = BankInfo(document["name"], url.rstrip("/"), document["public_key"],
                        document["chain"])
        self.wallet.replace_entries([])
        self.wallet = self.wallet.registered(name=address.partition("*")[0],
                                             chain=record["chain"], address=address, bank=bank)
        return record["chain"], int(answer["recovery"]["effective"])

    def cancel_recovery(self) -> Submission:
        """Refuse the recovery of this chain's key that someone asked for (seen on sync)."""
        report = self.sync()
        pending = report.state.recovery
        if pending is None:
            raise WalletError("no recovery of your chain's key is pending")
        return self._submit("cancel_recovery", {"recovery": pending.entry})

    # --- syncing and verifying ------------------------------------------------------------

    def _client(self) -> tuple[str, BankInfo, BankClient]:
        chain, bank = self.wallet.require_chain()
        return chain, bank, BankClient(bank.url, self.key, bank=bank.name,
                                       label=f"your bank {bank.name}")

    def sync(self, *, full: bool = False) -> SyncReport:
        """Fetch new entries, verify each, keep them; compare what overlaps what we hold.

        With ``full`` the bank's whole chain is fetched and compared entry by entry.
        """
        chain, bank, client = self._client()
        copy = open_copy(self.wallet)
        try:
            pull(self.wallet, client, copy, 0 if full else copy.entries[-1].height)
        except BankError as e:
            if e.code == "forbidden":
                self._explain_lost_ownership(client, chain, bank, copy.state)
            raise
        return SyncReport(copy.state, keep(self.wallet, copy), copy.verifier)

    def _explain_lost_ownership(self, client: BankClient, chain: str, bank: BankInfo,
                                held: ChainState) -> None:
        """The bank refuses this wallet's key its own chain: if the chain's public record names
        another owner now, say so (a recovery, or a rotation from elsewhere, took effect)
        rather than the bank's bare "forbidden" (the fourth outside attacker's victim saw only
        that)."""
        try:
            record = verify_record(client.lookup("id", chain), bank.key)
        except TChainError:  # the explanation is a courtesy: the bank's refusal stands
            return
        owner = record.get("account_id")  # the chain's owner key (SEP-2's name for it)
        ours = {k.public_key for k in (self.key, self.pending_key) if k is not None}
        if owner is not None and owner not in ours:  # not a rotation of ours, interrupted
            raise WalletError(
                f"your chain {self.wallet.address} now belongs to the key {owner}: "
                "a recovery (or a rotation made elsewhere) took effect, and this wallet's key "
                f"no longer signs for it; your copy up to height {held.height} is kept; if "
                "you did not ask for it, talk to your bank")

    def rebuild(self) -> tuple[SyncReport, Path | None]:
        """Make the copy anew from the bank's chain, verified from its genesis (chainsync);
        return the report and where the old copy was kept."""
        _, _, client = self._client()
        owners = {k.public_key for k in (self.key, self.pending_key) if k is not None}
        copy, kept_old = rebuild(self.wallet, client, owners)
        return SyncReport(copy.state, len(copy.entries), copy.verifier), kept_old

    def read(self, *, full: bool = False) -> SyncReport:
        """What reads show: a sync when the bank answers; when it cannot be reached, the
        wallet's own verified copy as it stands (the report says why, in ``offline``)."""
        try:
            return self.sync(full=full)
        except UnreachableError as e:
            copy = open_copy(self.wallet)
            return SyncReport(copy.state, 0, copy.verifier, offline=e.message)

    def verify(self) -> SyncReport:
        """Verify the local copy offline, then compare it in full with what the bank serves
        (when it can be reached: see ``offline``)."""
        return self.read(full=True)

    def history(self) -> tuple[list[SignedEntry], SyncReport]:
        """The chain's entries, every one verified, and the read that verified them."""
        report = self.read()
        return [SignedEntry.from_bytes(raw) for raw in self.wallet.local_entries()], report

    def addresses(self, parties: list[Party], *, ask: bool = True) -> dict[str, str]:
        """The addresses of the chains ``parties`` name: from the wallet, and (with ``ask``)
        from each chain's bank (``GET /federation?type=id``), checked against the key our
        bank pinned for it and kept in the wallet. A chain whose bank cannot be asked now is
        left out."""
        chain, _ = self.wallet.require_chain()
        known = {**self.wallet.addresses, chain: self.wallet.address or chain}
        wanted = {p.chain: p for p in parties if p.chain is not None and p.chain not in known}
        if not wanted or not ask:
            return known
        learned: dict[str, str] = {}
        try:
            banks = [self.banks().home(), *self.banks().peers().values()]
        except BankError:
            return known  # our bank cannot say who its peers are now: ask another time
        for wanted_chain, party in wanted.items():
            at = next((b for b in banks if b.key == party.bank_key or
                       b.name == party.bank_name), None)
            if at is None:
                continue
            try:
                record = verify_record(self.banks().client(at).lookup("id", wanted_chain),
                                       at.key)
            except (BankError, VerificationError):
                continue
            if record.get("chain") == wanted_chain and isinstance(record.get("address"), str):
                learned[wanted_chain] = record["address"]
        if learned:
            self.wallet = self.wallet.remember(learned)
        return {**known, **learned}

    # --- moving value -----------------------------------------------------------------------

    def _submit(self, type_: str, body: dict[str, Any], *, spends: str | None = None
                ) -> Submission:
        """Sign the intent for the next seq of the verified chain, submit it, keep our entry.

        ``spends`` is the asset the intent gives away: one the chain never held is refused
        here, in the customer's words, before anything is signed.
        """
        chain, _, client = self._client()
        copy = open_copy(self.wallet)
        pull(self.wallet, client, copy, copy.entries[-1].height)
        keep(self.wallet, copy)
        state = copy.state
        if spends is not None and spends not in state.balances and not state.issues(spends):
            held = ", ".join(sorted(state.balances)) or "nothing yet"
            raise BankError(f"you hold no {spends}; your chain holds {held}",
                            code=UnknownAssetError.code)
        doc = sign_intent(self.key, type_, chain, state.seq + 1, now_ms(), body)
        try:
            answer = client.submit(doc)
        except BankError as e:
            raise _said_to_you(e, chain) from e
        entries = answer.get("entries") if isinstance(answer, dict) else None
        if not isinstance(entries, list) or not entries:
            raise BankError("the bank accepted the intent but returned no entries")
        try:
            made = [SignedEntry.from_dict(e) for e in entries]
        except EncodingError as e:
            raise SecurityError(f"the bank answered with a malformed entry: {e.message}") from e
        if made[0].intent is None or made[0].intent.doc != doc:
            raise SecurityError("the bank's entry does not carry the intent this wallet signed")
        catch_up(self.wallet, client, copy, made[0])
        keep(self.wallet, copy)
        flow = answer.get("flow")
        return Submission(made, flow if isinstance(flow, dict) else None)

    def banks(self) -> Banks:
        """Our bank, whose key the wallet pinned, and the banks it trusts."""
        if self._banks is None:
            _, bank = self.wallet.require_chain()
            self._banks = Banks(bank.url, name=bank.name, key=bank.key, mine=True)
        return self._banks

    def resolve(self, address: str) -> dict[str, Any]:
        """The signed federation record of ``address``, checked against its bank's key."""
        return self.banks().record(address)

    def _payee(self, address: str, nothing_done: str) -> dict[str, Any]:
        """The payee's record, from its own bank: when that bank is down, the error names it,
        not ours, and says that nothing was done."""
        try:
            record = self.resolve(address)
        except UnreachableError as e:
            raise UnreachableError(f"{e.message}; {nothing_done}") from e
        if record["chain"] not in self.wallet.addresses:  # what history will call it
            self.wallet = self.wallet.remember({record["chain"]: address})
        return record

    def route_for(self, address: str, amount: str, asset: str, via: tuple[str, ...] = ()
                  ) -> RoutePlan | None:
        """The route a payment to ``address`` takes through correspondents (cli.routes), or
        None when its bank is ours or one ours pins and no route is asked for."""
        _, bank = parse_address(address)
        banks = self.banks()
        if not via and (bank == banks.home().name or bank in banks.peers()):
            return None
        return plan_route(banks, bank, str(UAI.parse(asset)), int(_amount(amount)), via)

    def pay(self, address: str, amount: str, asset: str, memo: str | None = None, *,
            plan: RoutePlan | None = None) -> Submission:
        """Pay ``address``; along ``plan`` (the payee then gets ``amount``, and the payer
        pays the fees too: what the plan showed)."""
        if plan is not None:
            try:
                record = payee_record(self.banks(), plan, address)
            except UnreachableError as e:
                raise UnreachableError(f"{e.message}; nothing was paid") from e
            body: dict[str, Any] = plan.body(record["chain"])
            if memo:
                body["memo"] = memo
            return self._submit("payment", body, spends=body["asset"])
        record = self._payee(address, "nothing was paid")
        body = {"to": record["chain"], "to_validator": record["validator"],
                "asset": str(UAI.parse(asset)), "amount": _amount(amount)}
        if memo:
            body["memo"] = memo
        return self._submit("payment", body, spends=body["asset"])

    def issue(self, code: str, amount: str, to_address: str, memo: str | None = None
              ) -> Submission:
        if self.wallet.address is None:
            raise WalletError("this wallet has no chain yet")
        asset = str(UAI.parse(f"{self.wallet.address}:{code}"))
        record = self._payee(to_address, "nothing was issued")
        body = {"to": record["chain"], "to_validator": record["validator"], "asset": asset,
                "amount": _amount(amount)}
        if memo:
            body["memo"] = memo
        return self._submit("issue", body)

    def redeem(self, amount: str, asset: str, memo: str | None = None) -> Submission:
        body = {"asset": str(UAI.parse(asset)), "amount": _amount(amount)}
        if memo:
            body["memo"] = memo
        return self._submit("redeem", body, spends=body["asset"])

    # --- offers -------------------------------------------------------------------------------

    def offer(self, sell: tuple[str, str], buy: tuple[str, str], expires_in: float,
              min_fill: str | None = None, window: float | None = None) -> Submission:
        """Offer to sell ``sell`` = (amount, UAI) for ``buy``, open for ``expires_in`` s; with
        ``min_fill``, takes of any part of at least that much (or of all that is left); with
        ``window`` (s), the takes of its first seconds ranked, best bid first."""
        selling = str(UAI.parse(sell[1]))
        body: dict[str, Any] = {
            "sell": {"asset": selling, "amount": _amount(sell[0])},
            "buy": {"asset": str(UAI.parse(buy[1])), "amount": _amount(buy[0])},
            "expires": now_ms() + int(expires_in * 1000)}
        if min_fill is not None:
            body["min_fill"] = _amount(min_fill)
        if window is not None:
            body["window"] = int(window * 1000)
        return self._submit("offer", body, spends=selling)

    def own_offers(self, state: ChainState) -> list[dict[str, Any]]:
        """This chain's open offers, from its verified copy alone: what ``offer list`` can
        still show when the bank cannot be reached."""
        _, bank = self.wallet.require_chain()
        entries = self.wallet.local_entries()
        out = []
        for offer_id, hold in state.holds.items():
            if hold.kind != "offer":
                continue
            entry = SignedEntry.from_bytes(entries[hold.height])
            assert entry.intent is not None and entry.id == offer_id
            body = entry.intent.doc["intent"]["body"]
            out.append({"id": offer_id, "validator": bank.name, "sell": body["sell"],
                        "buy": body["buy"], "expires": body["expires"],
                        "remaining": str(hold.amount), **_terms_of_parts(body)})
        return sorted(out, key=lambda o: o["id"])

    def offers(self, asset: str | None) -> list[dict[str, Any]]:
        """Open offers our bank knows, each checked against its bank's pinned key."""
        _, bank, client = self._client()
        answer = client.offers(None if asset is None else str(UAI.parse(asset)))
        keys = {bank.name: bank.key, **{n: p.key for n, p in self.banks().peers().items()}}
        out = []
        for item in answer:
            offer = SignedEntry.from_dict(item["offer"])
            if keys.get(item["validator"]) != offer.validator:
                raise SecurityError(f"offer {item['id']} is not signed by {item['validator']}")
            try:
                offer.verify()
            except SignatureError as e:
                raise SecurityError(f"offer {item['id']}'s signature does not verify") from e
            if offer.intent is None or offer.id != item["id"]:
                raise SecurityError(f"offer {item['id']} is not the entry it claims")
            body = offer.intent.doc["intent"]["body"]
            # what is left: the bank's word (its peers' news of fills); the price of a take
            # is fixed by the signed offer alone, and the maker's bank refuses one of more
            remaining = item.get("remaining", body["sell"]["amount"])
            out.append({"id": offer.id, "validator": item["validator"], "sell": body["sell"],
                        "buy": body["buy"], "expires": body["expires"],
                        "remaining": str(remaining), **_terms_of_parts(body)})
        return out

    def take(self, typed: str, amount: str | None = None, bid: str | None = None
             ) -> Submission:
        """Take an offer (any unique start of its id): give what it buys, get what it sells;
        with ``amount``, only that much of what it sells, at the offer's price rounded up
        (tchain.model.fill_price): the whole offer when None, the same take as ever. With
        ``bid``, give that much instead: a bid above the price, for an offer with a window
        (docs/adr/0009-best-taker.md)."""
        listed = {o["id"]: o for o in self.offers(None)}
        offer = resolve_prefix(typed, listed, "offer")
        if offer is None:
            raise BankError(f"offer {typed} is not open at your bank: no offer it lists has "
                            "an id starting so", code=UnknownOfferError.code)
        offer_id = offer["id"]
        sell, buy = offer["buy"], offer["sell"]
        if amount is not None:
            n = parse_positive_amount(amount)
            price = fill_price(int(offer["sell"]["amount"]), int(offer["buy"]["amount"]), n)
            sell = {"asset": offer["buy"]["asset"], "amount": str(price)}
            buy = {"asset": offer["sell"]["asset"], "amount": str(n)}
        if bid is not None:
            sell = {"asset": offer["buy"]["asset"], "amount": _amount(bid)}
        return self._submit("take", {"offer": offer_id, "validator": offer["validator"],
                                     "sell": sell, "buy": buy},
                            spends=offer["buy"]["asset"])

    def flow(self, typed: str) -> dict[str, Any]:
        """Where a payment or take across banks stands: ``typed`` is any unique start of the id
        of an entry in it (the one `tchain pay` printed, its settle or release)."""
        _, bank, client = self._client()
        report = self.sync()
        entries = [SignedEntry.from_bytes(raw) for raw in self.wallet.local_entries()]
        flow_id, entry = resolve_flow(typed, entries)
        if entry is None:
            raise BankError(f"no entry of your chain starts with {typed} (your chain is at "
                            f"height {report.state.height}); `tchain history --json` lists "
                            "their ids", code=NotFoundError.code)
        if flow_id is None:
            raise BankError(f"no cross-bank flow at entry {entry.height} of your chain "
                            f"({entry.kind}): only a payment to another bank's customer and "
                            "a take of another bank's offer make one, and what they do shows "
                            "in your chain", code=NotFoundError.code)
        answer = client.flow(flow_id)
        if not isinstance(answer, dict) or "state" not in answer:
            raise BankError(f"{bank.name}'s flow answer has no state")
        return answer

    # --- hash-time locks (tchain.htlc) -----------------------------------------------------------

    def lock(self, address: str, amount: str, asset: str, hash_: str, expires_in: float
             ) -> Submission:
        """Hold ``amount`` of ``asset`` for ``address`` until ``expires_in`` s from now: theirs
        if they show the preimage of ``hash_`` before then, ours again after."""
        record = self._payee(address, "nothing was locked")
        body = {"to": record["chain"], "to_validator": record["validator"],
                "asset": str(UAI.parse(asset)), "amount": _amount(amount), "hash": hash_,
                "expires": now_ms() + int(expires_in * 1000)}
        return self._submit("lock", body, spends=body["asset"])

    def claim(self, lock_id: str, preimage: str) -> Submission:
        """Take the lock ``lock_id`` made for us, showing its preimage."""
        return self._submit("claim", {"lock": lock_id, "preimage": preimage})

    def lock_for_us(self, lock_id: str) -> dict[str, Any]:
        """A lock our bank keeps for our chain (made at its bank for us, not claimed here yet):
        its bank's signature on it checked against that bank's pinned key."""
        chain, bank, client = self._client()
        answer = client.lock(lock_id)
        keys = {bank.name: bank.key, **{n: p.key for n, p in self.banks().peers().items()}}
        try:
            lock = SignedEntry.from_dict(answer["lock"])
            lock.verify(keys.get(answer["validator"], ""))
        except (EncodingError, SignatureError, KeyError, TypeError) as e:
            raise SecurityError(f"lock {lock_id} is not signed by the bank it names") from e
        body = lock.intent.doc["intent"]["body"] if lock.intent is not None else {}
        if lock.id != lock_id or lock.kind != "lock" or body.get("to") != chain:
            raise SecurityError(f"{bank.name}'s answer is not lock {lock_id} for your chain")
        return {"id": lock_id, "validator": answer["validator"], "state": answer["state"],
                "lock": lock}

    def cancel(self, typed: str) -> Submission:
        """Cancel our open offer whose id starts with ``typed``."""
        open_offers = {o["id"]: o["id"] for o in self.own_offers(self.sync().state)}
        offer_id = resolve_prefix(typed, open_offers, "offer")
        if offer_id is None:
            raise BankError(f"you have no open offer whose id starts with {typed}",
                            code=UnknownOfferError.code)
        return self._submit("cancel", {"offer": offer_id})


def _said_to_you(e: BankError, chain: str) -> BankError:
    """The bank's refusal with our own chain's id said as "your chain": the customer never
    typed that id, and it reads like someone else's."""
    message = e.message.replace(f"chain {chain}", "your chain").replace(chain, "your chain")
    return type(e)(message, code=e.code, status=e.status, **e.detail)


def _amount(text: str) -> str:
    return str(parse_positive_amount(text))


def load_proof(path: Path) -> Any:
    try:
        return parse(path.read_bytes())
    except OSError as e:
        raise WalletError(f"cannot read {path}: {e.strerror}") from e
    except EncodingError as e:
        raise WalletError(f"{path} is not a proof document: {e.message}") from e


def _terms_of_parts(body: dict[str, Any]) -> dict[str, Any]:
    """What an offer's body says of how it may be taken, as the listings show it: ``min_fill``
    (parts) and ``window`` (ms: takes ranked, best bid first)."""
    return {key: body[key] for key in ("min_fill", "window") if key in body}
