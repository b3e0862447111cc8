"""The federation endpoints: ``/.well-known/tchain.json``, ``/federation`` and offer discovery
(``/v1/offers?asset=UAI``); for wallets that speak Stellar's federation,
``/.well-known/stellar.toml`` and ``/federation/sep2`` (federation/stellar.py)."""

from __future__ import annotations

from typing import Any, Protocol

from flask import Blueprint, Response, current_app, request

from federation import stellar
from tchain.encoding import canonical
from tchain.errors import EncodingError, NotFoundError
from tchain.keys import is_hex
from tchain.values import UAI, parse_address

OFFERS_PAGE = 100  # offers listed at most at once: a page of a public listing stays cheap

__all__ = ["FederationSource", "blueprint"]

blueprint = Blueprint("federation", __name__)


class FederationSource(Protocol):
    """What the federation endpoints need from the bank (installed by the validator app as
    ``app.extensions["tchain.federation"]``)."""

    def well_known(self) -> dict[str, Any]:
        """The bank's signed well-known document."""

    def record_by_address(self, address: str) -> dict[str, Any] | None:
        """The signed record of an address here, or None."""

    def record_by_id(self, key_or_chain: str) -> dict[str, Any] | None:
        """The signed record of an owner key or chain id here, or None."""

    def offers(self, asset: str | None, after: str | None, limit: int
               ) -> list[dict[str, Any]]:
        """Open offers known here (its own and its peers') selling or buying ``asset``, up
        to ``limit`` in id order from after the offer id ``after``."""


def _source() -> FederationSource:
    source: FederationSource = current_app.extensions["tchain.federation"]
    return source


def _json(body: Any) -> Response:
    return Response(canonical(body), mimetype="application/json")


@blueprint.after_request
def _allow_any_origin(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@blueprint.get("/.well-known/tchain.json")
def well_known() -> Response:
    return _json(_source().well_known())


@blueprint.get("/federation")
def federation() -> Response:
    return _json(_lookup())


@blueprint.get(stellar.SEP2_PATH)
def federation_sep2() -> Response:
    """The same lookup, answered in SEP-2's flat shape (federation/stellar.py); SEP-2's
    txid and forward lookups are refused as any other type is (400: a bank has no Stellar
    transactions to look up, nor payments to forward)."""
    response = _json(stellar.sep2_answer(_lookup()))
    response.headers["Cache-Control"] = "no-store"  # SEP-2: answers are not to be cached
    return response


@blueprint.get(stellar.STELLAR_TOML_PATH)
def stellar_toml() -> Response:
    document = _source().well_known()["document"]
    return Response(stellar.stellar_toml(name=document["name"],
                                         public_key=document["public_key"],
                                         api_url=document["api_url"]), mimetype="text/plain")


def _lookup() -> dict[str, Any]:
    """The signed record ``type=name&q=ADDRESS`` or ``type=id&q=KEY_OR_CHAIN`` asks for."""
    kind = request.args.get("type")
    query = request.args.get("q")
    if kind not in ("name", "id") or not query:
        raise EncodingError(f"federation takes type=name or type=id and q=..., got "
                            f"type={kind!r} q={query!r}")
    if kind == "name":
        parse_address(query)
        record = _source().record_by_address(query)
    else:
        if not is_hex(query, 64):
            raise EncodingError(f"type=id takes an owner key or chain id (64 hex), got {query!r}")
        record = _source().record_by_id(query)
    if record is None:
        raise NotFoundError(f"{query} is not known here")
    return record


@blueprint.get("/v1/offers")
def offers() -> Response:
    """Offers by UAI, each with the signed offer entry that proves it is funded; a page of at
    most OFFERS_PAGE, with ``next`` (the ``after`` of the next page) when it is full."""
    asset = request.args.get("asset")
    if asset is not None:
        UAI.parse(asset)
    after = request.args.get("after")
    if after is not None and not is_hex(after, 64):
        raise EncodingError(f"after must be an offer id (64 lowercase hex), got {after!r}")
    found = _source().offers(asset, after, OFFERS_PAGE)
    page: dict[str, Any] = {"offers": found}
    if len(found) == OFFERS_PAGE:
        page["next"] = found[-1]["id"]
    return _json(page)
