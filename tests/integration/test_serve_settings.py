"""Where ``tchain validator serve`` takes its settings: a flag, else a ``TCHAIN_*`` environment
variable, else the config file (``--config FILE``, or ``serve.toml`` in the data directory),
else its default; and its log as JSON lines on request (``--log-format json``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from cli.local import LocalBank
from cli.main import root
from validator.config import init_bank

BANK = "bank1.example"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "bank1"
    init_bank(path, name=BANK, url="http://127.0.0.1:9")
    return path


def settings(data: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(root, ["--json", "validator", "serve", "--data", str(data),
                                     "--print-settings", *args], env=env or {},
                              catch_exceptions=False)


def resolved(data: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    result = settings(data, *args, env=env)
    assert result.exit_code == 0, result.output
    return {s["name"]: s for s in json.loads(result.stdout)}


def test_a_flag_wins_over_the_environment_which_wins_over_the_file(data):
    (data / "serve.toml").write_text("[serve]\nworkers = 3\nthreads = 4\nrate_limit = 7\n")
    got = resolved(data, "--workers", "7", env={"TCHAIN_WORKERS": "5", "TCHAIN_THREADS": "6"})
    assert (got["workers"]["value"], got["workers"]["from"]) == (7, "flag")
    assert (got["threads"]["value"], got["threads"]["from"]) == (6, "env TCHAIN_THREADS")
    assert got["rate_limit"]["value"] == 7 and got["rate_limit"]["from"].startswith("file ")
    assert (got["timeout"]["value"], got["timeout"]["from"]) == (30, "default")


def test_a_config_file_named_on_the_command_line_or_in_the_environment(data, tmp_path):
    named = tmp_path / "elsewhere.toml"
    named.write_text('[serve]\nhost = "127.0.0.2"\nmax_store_size = "64M"\n'
                     'log_format = "json"\naccess_log = true\n')
    for args, env in ((("--config", str(named)), None), ((), {"TCHAIN_CONFIG": str(named)})):
        got = resolved(data, *args, env=env)
        assert got["host"]["value"] == "127.0.0.2"
        assert got["max_store_size"]["value"] == 64 << 20
        assert got["log_format"]["value"] == "json" and got["access_log"]["value"] is True


def test_the_client_timeouts_default_to_the_protocol_s_and_may_be_set(data):
    got = resolved(data)
    assert [got[n]["value"] for n in ("head_timeout", "body_timeout", "keepalive")] == \
        [10.0, 20.0, 5.0]  # docs/protocol.md §6: what a client may count on by default
    (data / "serve.toml").write_text("[serve]\nbody-timeout = 60\n")
    got = resolved(data, "--head-timeout", "2.5", env={"TCHAIN_KEEPALIVE": "1"})
    assert [got[n]["value"] for n in ("head_timeout", "body_timeout", "keepalive")] == \
        [2.5, 60.0, 1.0]
    assert settings(data, "--head-timeout", "0").exit_code == 2


def test_the_port_comes_from_the_banks_url_unless_set(data):
    assert resolved(data)["port"]["value"] == 9
    assert resolved(data, env={"TCHAIN_PORT": "8123"})["port"]["value"] == 8123


def test_the_people_output_says_where_each_setting_came_from(data):
    (data / "serve.toml").write_text("[serve]\nworkers = 3\n")
    result = CliRunner().invoke(root, ["validator", "serve", "--data", str(data),
                                       "--print-settings"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line = next(row for row in result.stdout.splitlines() if row.startswith("workers"))
    assert "3" in line and "serve.toml" in line


@pytest.mark.parametrize(("text", "said"), [
    ("[serve]\nworkers = 0\n", "workers"),
    ("[serve]\nwrokers = 3\n", "wrokers"),
    ("[serve]\nfault = \"skip-settle\"\n", "fault"),
    ("[serve\nworkers = 3\n", "TOML"),
    ('[serve]\nmax_store_size = "a lot"\n', "max_store_size"),
    ("workers = 3\n", "[serve]"),
])
def test_a_bad_config_file_is_one_sentence_and_exit_1(data, text, said):
    (data / "serve.toml").write_text(text)
    result = settings(data)  # under --json: the error is one JSON object, one line
    assert result.exit_code == 1, result.output
    error = json.loads(result.stderr)
    assert error["error"] == "config_error" and result.stderr.count("\n") == 1
    assert said in error["message"] and "serve.toml" in error["message"]
    assert "Traceback" not in result.output


def test_a_bad_value_in_the_environment_is_bad_usage(data):
    result = settings(data, env={"TCHAIN_WORKERS": "many"})
    assert result.exit_code == 2 and "TCHAIN_WORKERS" in result.output


def test_serve_takes_the_file_and_the_environment_and_logs_json_lines(tmp_path, monkeypatch):
    bank = LocalBank(tmp_path / "bank1", BANK, workers=2)
    (bank.data / "serve.toml").write_text('[serve]\nthreads = 3\nlog_format = "json"\n')
    monkeypatch.setenv("TCHAIN_ACCESS_LOG", "true")
    with bank:
        assert requests.get(bank.url + "/.well-known/tchain.json", timeout=10).ok
    lines = [json.loads(line) for line in bank.log.read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "pid", "message"} <= set(line)
                         for line in lines), lines
    assert any("with 2 workers of 3 threads" in line["message"] for line in lines)
    access = [line for line in lines if line.get("target") == "/.well-known/tchain.json"]
    assert access and all(a["status"] == 200 and a["method"] == "GET" for a in access)
    assert any("stopping" in line["message"] for line in lines)
