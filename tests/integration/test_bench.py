"""`tchain bench --quick` runs end to end (real servers on loopback) and prints every figure.

A smoke test, not a benchmark: it asserts that each figure is measured (a positive number)
and that the run leaves no directory and no server behind; never how fast anything is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from cli.bench import KEYS
from tests.realbanks import shadow_core


def _bench(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run from a directory holding a folder named tchain: the servers and load generators
    the bench starts import nothing from it."""
    return subprocess.run([sys.executable, "-P", "-m", "cli", "bench", "--quick", *args],
                          capture_output=True, text=True, timeout=300, check=False,
                          cwd=shadow_core(cwd))


def _left_behind(stderr: str) -> Path:
    found = re.search(r"working in (\S+?)\.\.\.", stderr)
    assert found, stderr
    return Path(found.group(1))


def test_bench_quick_prints_every_figure_and_leaves_nothing_running(tmp_path):
    run = _bench(tmp_path)
    assert run.returncode == 0, run.stderr
    for key in KEYS:
        line = next((x for x in run.stdout.splitlines() if x.startswith(key + " ")), None)
        assert line is not None, f"{key} missing from:\n{run.stdout}"
        assert float(line.split()[1]) > 0, line
    assert "chain of 10,000 entries" in run.stdout and "1,000 more chains" in run.stdout
    assert not _left_behind(run.stderr).exists()
    servers = subprocess.run(["pgrep", "-f", str(_left_behind(run.stderr))],
                             capture_output=True, text=True, check=False)
    assert servers.stdout == "", f"bench left processes running: {servers.stdout}"


def test_bench_json_is_one_object_with_exactly_the_documented_keys(tmp_path):
    run = _bench(tmp_path, "--json")
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert list(figures) == list(KEYS)
    assert all(isinstance(v, int | float) and v > 0 for v in figures.values()), figures
