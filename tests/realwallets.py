"""Helpers for tests of the customer's ``tchain`` command against real banks on loopback: the
command run in-process (click's CliRunner) or as a subprocess, wallets registered through it,
and two banks that pin each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner, Result

from cli.local import LocalBank
from cli.main import root
from tests.fault_proxy import FaultProxy
from validator.peers import add_peer

B1, B2, B3 = "bank1.example", "bank2.example", "bank3.example"
USD, EUR = f"{B1}:USD", f"{B2}:EUR"
PASSPHRASE = "correct horse"


def run(*args: str, wallet: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """``tchain ARGS`` in this process, with the wallet's passphrase in the environment."""
    environment = {"TCHAIN_PASSPHRASE": PASSPHRASE, **(env or {})}
    if wallet is not None:
        environment["TCHAIN_WALLET"] = str(wallet)
    return CliRunner().invoke(root, list(args), env=environment, catch_exceptions=False)


def ok(*args: str, wallet: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """``run``, which must exit 0."""
    result = run(*args, wallet=wallet, env=env)
    assert result.exit_code == 0, f"tchain {' '.join(args)}: {result.exit_code} {result.stderr}"
    return result


def run_json(*args: str, wallet: Path | None = None) -> dict[str, object]:
    return dict(json.loads(ok(*args, "--json", wallet=wallet).stdout))


def start(args: list[str], wallet: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[str]:
    """``tchain ARGS`` started as a process of its own (``python -P``, as a user runs it)."""
    environment = {**os.environ, "TCHAIN_PASSPHRASE": PASSPHRASE,
                   "TCHAIN_WALLET": str(wallet), **(env or {})}
    return subprocess.Popen([sys.executable, "-P", "-m", "cli", *args], env=environment,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def customer(base: Path, name: str, bank: LocalBank, deposit: str | None = None,
             *register: str) -> Path:
    """A wallet registered as ``name`` at ``bank`` (with ``deposit`` of its first asset; the
    options ``register`` to ``tchain register``)."""
    path = base / f"{name}.json"
    ok("wallet", "create", wallet=path)
    ok("register", name, "--validator", bank.url, *register, wallet=path)
    if deposit is not None:
        ok("validator", "deposit", "--data", str(bank.data), f"{name}*{bank.name}", deposit,
           bank.config.assets[0])
    return path


@contextmanager
def two_banks(base: Path, proxy: FaultProxy | None = None
              ) -> Iterator[tuple[LocalBank, LocalBank]]:
    """bank1 (USD) and bank2 (EUR) on 127.0.0.1, each pinning the other; stopped after.

    With ``proxy``, bank2 reaches bank1 only through it (bank1's public URL), so a test can
    cut what bank2 tells bank1 while its customers still reach both.
    """
    b1 = LocalBank(base / "bank1", B1, assets=("USD",),
                   public_url=None if proxy is None else proxy.url)
    b2 = LocalBank(base / "bank2", B2, assets=("EUR",))
    if proxy is not None:
        proxy.start(b1.port)
    try:
        with b1, b2:
            add_peer(b1.config, b2.url)
            add_peer(b2.config, b1.url if proxy is None else proxy.url)
            yield b1, b2
    finally:
        if proxy is not None:
            proxy.close()


@contextmanager
def three_banks(base: Path) -> Iterator[tuple[LocalBank, LocalBank, LocalBank]]:
    """bank1 (USD), bank2 (BOND) and bank3 (GBP) on 127.0.0.1, each pinning the two others;
    stopped after."""
    b1 = LocalBank(base / "bank1", B1, assets=("USD",))
    b2 = LocalBank(base / "bank2", B2, assets=("BOND",))
    b3 = LocalBank(base / "bank3", B3, assets=("GBP",))
    with b1, b2, b3:
        for a, b in ((b1, b2), (b1, b3), (b2, b3)):
            add_peer(a.config, b.url)
            add_peer(b.config, a.url)
        yield b1, b2, b3
