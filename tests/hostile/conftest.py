from __future__ import annotations

from collections.abc import Iterator

import pytest

from cli.local import LocalBank
from tests.hostile.harness import HostilePeer, audit_clean, books_balance
from validator.peers import add_peer

B1, B2 = "bank1.example", "bank2.example"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalBank, LocalBank]]:
    """Bank 1 (honest, issues USD and EUR) and bank 2 (issues EUR), real validators on
    127.0.0.1, each pinning the other; stopped after the module."""
    base = tmp_path_factory.mktemp("hostile")
    b1 = LocalBank(base / "b1", B1, assets=("USD", "EUR"), settle_deadline=5)
    b2 = LocalBank(base / "b2", B2, assets=("EUR",), settle_deadline=5)
    with b1, b2:
        add_peer(b1.config, b2.url)
        add_peer(b2.config, b1.url)
        yield b1, b2


@pytest.fixture
def liar(pair: tuple[LocalBank, LocalBank]) -> Iterator[HostilePeer]:
    """Bank 2's key in the test's hands; after the test, bank 1's books balance and its audit
    is clean, whatever bank 2 sent."""
    b1, b2 = pair
    yield HostilePeer(b2, b1)
    books_balance(b1)
    audit_clean(b1)
