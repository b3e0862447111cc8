"""HTTP client for a bank's API: requests in, strict JSON out, refusals as BankError."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from cli.errors import BankError, CliError, UnreachableError
from federation.asking import AnswerCut, AnswerTooSlow, ask, bounded_session
from tchain.auth import authorization_header, request_signature
from tchain.clock import now_ms
from tchain.encoding import canonical, parse
from tchain.errors import EncodingError
from tchain.keys import SigningKey

__all__ = ["BankClient"]

TIMEOUT = 15  # for each read
# for the whole exchange, its answer read to the end (federation.asking): a bank that trickles
# its answer, or sends one without end, cannot hold the wallet
ANSWER_SECONDS = 60.0
PLAN_PAGES = 10_000  # pages of GET /v1/plans a listing reads at most (a bank's next may loop)


class BankClient:
    """One bank's HTTP API.

    Args:
        url: the bank's API URL (``http://127.0.0.1:8701``).
        key: the wallet's key, for authenticated reads.
        bank: the bank's name, for authenticated reads: each is signed for that bank only.
        label: how the customer knows this bank (``your bank bank1.example``), for the error
            that says it cannot be reached: whose bank is down matters to what to do next.
    """

    def __init__(self, url: str, key: SigningKey | None = None, *, bank: str | None = None,
                 label: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.bank = bank
        self.label = label or "the bank"
        self._http = bounded_session()
        self.last_request_sig: str | None = None  # binds a signed answer to our request

    def _call(self, method: str, path: str, *, query: dict[str, Any] | None = None,
              body: Any = None, auth: bool = False) -> Any:
        qs = urlencode(query or {})
        data = b"" if body is None else canonical(body)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if auth:
            if self.key is None or self.bank is None:
                raise CliError(f"{method} {path} must be signed, with the wallet's key and "
                               "for the bank's name, and this client has no key or name")
            headers["Authorization"] = authorization_header(
                self.key, method, urlsplit(self.url).path + path, qs, data, now_ms(),
                bank=self.bank)
            self.last_request_sig = request_signature(headers["Authorization"])
        url = f"{self.url}{path}" + (f"?{qs}" if qs else "")
        try:
            response = ask(self._http, method, url, seconds=ANSWER_SECONDS, data=data or None,
                           headers=headers, timeout=TIMEOUT)
        except (requests.ConnectionError, requests.Timeout) as e:
            why = _why_unreachable(e)
            if method == "POST" and isinstance(e, (requests.ReadTimeout, AnswerTooSlow)):
                why += (", and what was sent may have been done: `tchain sync` will show it "
                        "once the bank answers")
            raise UnreachableError(f"cannot reach {self.label} at {self.url}: {why}") from e
        except requests.RequestException as e:
            raise BankError(f"cannot ask {self.label} at {self.url}: {e}") from e
        try:
            answer = parse(response.body)
        except EncodingError as e:
            raise BankError(f"the bank at {self.url} answered {response.status} with "
                            f"something that is not protocol JSON: {e.message}") from e
        if response.status >= 400:
            if isinstance(answer, dict) and "error" in answer:
                detail = {k: v for k, v in answer.items() if k not in ("error", "message")}
                raise BankError(str(answer.get("message", "")), code=str(answer["error"]),
                                status=response.status, **detail)
            raise BankError(f"the bank answered HTTP {response.status}")
        return answer

    def well_known(self) -> Any:
        return self._call("GET", "/.well-known/tchain.json")

    def lookup(self, kind: str, query: str) -> Any:
        return self._call("GET", "/federation", query={"type": kind, "q": query})

    def register(self, request: dict[str, Any]) -> Any:
        return self._call("POST", "/v1/chains", body=request)

    def submit(self, intent: dict[str, Any]) -> Any:
        return self._call("POST", "/v1/intents", body=intent)

    def recover(self, chain_id: str, request: dict[str, Any]) -> Any:
        return self._call("POST", f"/v1/chains/{chain_id}/recovery", body=request)

    def offers(self, asset: str | None) -> list[Any]:
        """Every open offer the bank lists (of ``asset``), page after page."""
        found: list[Any] = []
        after: str | None = None
        while True:
            query = {k: v for k, v in (("asset", asset), ("after", after)) if v is not None}
            answer = self._call("GET", "/v1/offers", query=query or None)
            if not isinstance(answer, dict) or not isinstance(answer.get("offers"), list):
                raise BankError("the bank's offers answer is not {\"offers\": [...]}")
            found += answer["offers"]
            after = answer.get("next")
            if not isinstance(after, str) or not answer["offers"]:
                return found

    def flow(self, flow_id: str) -> Any:
        return self._call("GET", f"/v1/flows/{flow_id}", auth=True)

    def plan_propose(self, plan_file: dict[str, Any]) -> Any:
        return self._call("POST", "/v1/plans", body=plan_file, auth=True)

    def plan(self, plan_id: str) -> Any:
        return self._call("GET", f"/v1/plans/{plan_id}", auth=True)

    def plan_consent(self, plan_id: str, consent: dict[str, Any]) -> Any:
        return self._call("POST", f"/v1/plans/{plan_id}/consent", body=consent, auth=True)

    def plans(self) -> Any:
        """Every plan the bank lists for us, page after page (a page may be empty and still
        have a next: the bank reads a page of plans and shows those we may read)."""
        found: list[Any] = []
        after: str | None = None
        for _ in range(PLAN_PAGES):
            answer = self._call("GET", "/v1/plans", query=None if after is None else
                                {"after": after}, auth=True)
            if not isinstance(answer, dict) or not isinstance(answer.get("plans"), list):
                raise BankError("the bank's plans answer is not {\"plans\": [...]}")
            found += answer["plans"]
            after = answer.get("next")
            if not isinstance(after, str):
                return {"plans": found}
        raise BankError(f"the bank's list of plans did not end in {PLAN_PAGES} pages")
    def lock(self, lock_id: str) -> Any:
        return self._call("GET", f"/v1/locks/{lock_id}", auth=True)

    def proofs(self) -> list[Any]:
        answer = self._call("GET", "/v1/proofs", auth=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("proofs"), list):
            raise BankError("the bank's proofs answer is not {\"proofs\": [...]}")
        return list(answer["proofs"])

    def chain(self, chain_id: str) -> tuple[Any, str]:
        """The chain's signed status and the signature of the request it must answer."""
        answer = self._call("GET", f"/v1/chains/{chain_id}", auth=True)
        assert self.last_request_sig is not None
        return answer, self.last_request_sig

    def entries(self, chain_id: str, start: int, limit: int = 1000) -> list[Any]:
        answer = self._call("GET", f"/v1/chains/{chain_id}/entries",
                            query={"from": start, "limit": limit}, auth=True)
        if not isinstance(answer, dict) or not isinstance(answer.get("entries"), list):
            raise BankError(f"the bank's entries answer is not {{\"entries\": [...]}}: "
                            f"{json.dumps(answer)[:80]}")
        return list(answer["entries"])


def _why_unreachable(e: requests.RequestException) -> str:
    if isinstance(e, AnswerCut):
        return str(e)
    if isinstance(e, requests.Timeout):
        return f"no answer within {TIMEOUT} s"
    if "refused" in str(e).lower():
        return "the connection was refused"
    return "the connection failed"
