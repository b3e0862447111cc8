"""The bank's public face: its signed well-known document and name and key lookup.

Anyone may call these endpoints (they answer with ``Access-Control-Allow-Origin: *``, as
Stellar's SEP-2 federation servers do); every answer is signed by the bank's key, so a client
that pinned the key can trust a record fetched through any cache or proxy.
"""

from federation.blueprint import FederationSource, blueprint
from federation.records import (
    WELL_KNOWN_PATH,
    make_record,
    make_well_known,
    verify_record,
    verify_well_known,
)

__all__ = ["WELL_KNOWN_PATH", "FederationSource", "blueprint", "make_record",
           "make_well_known", "verify_record", "verify_well_known"]
