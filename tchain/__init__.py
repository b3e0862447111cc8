"""TChain core: per-entity ledgers co-signed by bank validators.

Pure: encoding, digests, keys, intents and entries, the rules, chain verification and proofs.
The only I/O is the LMDB store (``tchain.store``). Nothing here imports Flask, requests or click.
"""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "__version__"]
