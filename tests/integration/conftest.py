from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.local import LocalBank
from tests.helpers import BANK


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBank]:
    """A real validator (2 workers, LMDB) on 127.0.0.1, stopped after the module."""
    base: Path = tmp_path_factory.mktemp("bank")
    with LocalBank(base / "bank1", BANK, workers=2) as running:
        yield running
