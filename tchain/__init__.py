"""TChain core: per-entity ledgers co-signed by bank validators.

Pure: encoding, digests, keys, intents and entries, the rules, chain verification and proofs.
It does no I/O: the LMDB store and the engine that writes through it are the shell's
(``validator.store``, ``validator.ledger``). Nothing here imports Flask, requests or click.
"""

__version__ = "0.1.0"
PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "__version__"]
