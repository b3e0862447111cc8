"""``tchain validator serve``: serve a bank, its settings from flags, the environment or a file.

Where each setting comes from, the first found wins:

1. its flag (``--workers 4``);
2. its environment variable, ``TCHAIN_`` and the setting's name (``TCHAIN_WORKERS=4``);
3. the config file: ``--config FILE`` (or ``TCHAIN_CONFIG``), else ``serve.toml`` in the data
   directory if there is one; its ``[serve]`` table names settings as the flags do, with ``_``
   or ``-`` (``workers = 4``, ``max_store_size = "10G"``, ``log_format = "json"``);
4. its default.

A value from the file is checked as the flag's would be, and a bad one is refused in one
sentence that names the file. ``--fault`` is taken from its flag only: a bank cheats on purpose
only when whoever starts it types so. ``--print-settings`` prints every setting, its value and
where it came from, and serves nothing.
"""

from __future__ import annotations

import logging
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from pythonjsonlogger.json import JsonFormatter

from cli.options import ByteSize, data_option
from cli.output import emit, table
from validator.config import BankConfig
from validator.errors import ConfigError
from validator.interbank import FAULTS
from validator.ratelimit import DEFAULT_BURST, DEFAULT_RATE

__all__ = ["SETTINGS", "serve"]

log = logging.getLogger("tchain.serve")

CONFIG_FILE = "serve.toml"
# The settings that may come from the environment or the config file (not --data, which
# finds the file, nor --fault).
SETTINGS = ("host", "port", "workers", "threads", "timeout", "access_log", "log_format",
            "settle_deadline", "max_store_size", "rate_limit", "rate_burst", "head_timeout",
            "body_timeout", "keepalive")
_TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"


F = TypeVar("F", bound=Callable[..., Any])


def _setting(name: str, *decls: str, **attrs: Any) -> Callable[[F], F]:
    """A click option whose environment variable is TCHAIN_<NAME>."""
    return click.option(*decls, name, envvar=f"TCHAIN_{name.upper()}", show_envvar=True,
                        **attrs)


@click.command("serve")
@data_option
@click.option("--config", "config_file", envvar="TCHAIN_CONFIG",
              type=click.Path(dir_okay=False, path_type=Path),
              help=f"The config file whose [serve] table gives settings no flag or "
                   f"environment variable gives [default: {CONFIG_FILE} in the data directory, "
                   "if there is one].")
@_setting("host", "--host", default="127.0.0.1", show_default=True,
          help="Address to listen on.")
@_setting("port", "--port", type=click.IntRange(1, 65535),
          help="Port to listen on [default: the port of the bank's URL].")
@_setting("workers", "--workers", default=2, show_default=True, type=click.IntRange(1, 64),
          help="Worker processes: each reads its connections on one event loop and runs "
               "complete requests on its threads.")
@_setting("threads", "--threads", default=8, show_default=True, type=click.IntRange(1, 256),
          help="Request threads per worker; the requests a worker has in flight at once "
               "share one LMDB commit (group commit).")
@_setting("timeout", "--timeout", default=30, show_default=True,
          type=click.IntRange(1, 3600),
          help="Seconds a worker's event loop may go without beating before the master "
               "kills it and starts another.")
@_setting("access_log", "--access-log", is_flag=True, help="Log every request.")
@_setting("log_format", "--log-format", type=click.Choice(["text", "json"]), default="text",
          show_default=True, help="Log lines for people, or one JSON object a line (time, "
                                  "level, logger, pid, message, and a request's fields).")
@_setting("settle_deadline", "--settle-deadline", default=30.0, show_default=True,
          type=click.FloatRange(0.5, 86_400),
          help="Seconds a peer bank has to do its side of a payment or an exchange.")
@_setting("max_store_size", "--max-store-size", type=ByteSize(),
          help="Never grow the LMDB store past this size (bytes, or 512K, 64M, 2G); writes "
               "past it get 503 storage_full while reads go on [default: until the disk is "
               "full].")
@_setting("rate_limit", "--rate-limit", default=DEFAULT_RATE, show_default=True,
          type=click.FloatRange(0, 1e6),
          help="Requests per second each customer key may make (shared by all workers); 0 "
               "for no limit.")
@_setting("rate_burst", "--rate-burst", default=DEFAULT_BURST, show_default=True,
          type=click.IntRange(1, 10**6), help="Requests a key may make at once.")
@_setting("head_timeout", "--head-timeout", default=10.0, show_default=True,
          type=click.FloatRange(0.5, 600),
          help="Seconds a client has from a request's first byte to the end of its head; "
               "after that it gets 408 and the connection is closed.")
@_setting("body_timeout", "--body-timeout", default=20.0, show_default=True,
          type=click.FloatRange(0.5, 3600),
          help="Seconds a client has from the end of a request's head to the end of its "
               "body (408 after).")
@_setting("keepalive", "--keepalive", default=5.0, show_default=True,
          type=click.FloatRange(0.5, 3600),
          help="Seconds an open connection may wait without starting a request.")
@click.option("--fault", type=click.Choice(sorted(FAULTS)),
              help="FOR DEMONSTRATIONS AND TESTS ONLY: make this bank cheat. skip-settle "
                   "accepts takes of peers' offers and never settles them, so the peer "
                   "records a non-settlement proof; keep-routed answers a routed payment "
                   "credited without handing it on, so the bank before it keeps a "
                   "route_unpaid proof; forge-next does so with the next bank's credit "
                   "forged under a key of its own. Taken from this flag only.")
@click.option("--print-settings", is_flag=True,
              help="Print every setting, its value and where it came from; serve nothing.")
@click.pass_context
def serve(ctx: click.Context, /, data: Path, config_file: Path | None, fault: str | None,
          print_settings: bool, **_flags: Any) -> None:
    """Serve the bank's API until stopped (SIGTERM or Ctrl-C): a master process that keeps
    the workers and the outbox sender running. Each setting is taken from its flag, else
    its TCHAIN_ environment variable, else the config file, else its default."""
    config = BankConfig.load(data)
    chosen = resolve(ctx, config, config_file)
    if print_settings:
        emit(ctx, [{"name": s.name, "value": s.value, "from": s.source} for s in chosen],
             table(["setting", "value", "from"],
                   [[s.name, "" if s.value is None else s.value, s.source] for s in chosen]))
        return
    got = {s.name: s.value for s in chosen}
    _log_to_stderr(got["log_format"])
    from validator.serving import Limits, Master

    # Before saying "serving": a directory already served or a port taken is one sentence.
    master = Master(str(data), host=got["host"], port=got["port"], workers=got["workers"],
                    threads=got["threads"], timeout=got["timeout"],
                    access_log=got["access_log"], limits=Limits(
                        head_timeout=got["head_timeout"], body_timeout=got["body_timeout"],
                        keepalive=got["keepalive"]), app_config={
                        "SETTLE_DEADLINE": got["settle_deadline"], "FAULT": fault,
                        "RATE_LIMIT": got["rate_limit"], "RATE_BURST": got["rate_burst"],
                        "STORE_OPTIONS": {} if got["max_store_size"] is None else {
                            "max_map_size": got["max_store_size"]}})
    log.info("serving %s on http://%s:%d with %d workers of %d threads", config.name,
             got["host"], got["port"], got["workers"], got["threads"])
    if fault:
        log.warning("--fault %s: %s will cheat on purpose. This is for demonstrations and "
                    "tests; never run a real bank with it.", fault, config.name)
    ctx.exit(master.run())


@dataclass(frozen=True)
class Setting:
    """One setting of serve: its value and where it came from."""

    name: str
    value: Any
    source: str


def resolve(ctx: click.Context, config: BankConfig, config_file: Path | None
            ) -> list[Setting]:
    """Every setting of :data:`SETTINGS` from its flag, its environment variable, the config
    file or its default, in that order (see the module docstring).

    Raises:
        ConfigError: the config file cannot be read, or gives a bad or unknown setting.
    """
    path = config_file or (config.data / CONFIG_FILE)
    from_file = _read(path) if config_file is not None or path.exists() else {}
    params = {p.name: p for p in ctx.command.params}
    chosen = []
    for name in SETTINGS:
        value, source = ctx.params[name], ctx.get_parameter_source(name)
        if source is ParameterSource.COMMANDLINE:
            said = "flag"
        elif source is ParameterSource.ENVIRONMENT:
            said = f"env TCHAIN_{name.upper()}"
        elif name in from_file:
            try:
                value = params[name].type_cast_value(ctx, from_file[name])
            except click.BadParameter as e:
                raise ConfigError(f"{path}: {name} = {from_file[name]!r} is refused: "
                                  f"{e.format_message()}") from e
            said = f"file {path}"
        else:
            said = "default"
        if name == "port" and value is None:
            value, said = config.port, "default (the port of the bank's URL)"
        chosen.append(Setting(name, value, said))
    return chosen


def _read(path: Path) -> dict[str, Any]:
    """The settings the file's [serve] table gives, by their names."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"the config file {path} is not valid TOML: {e}") from e
    table_ = doc.get("serve")
    if not isinstance(table_, dict) or set(doc) - {"serve"}:
        raise ConfigError(f"the config file {path} must hold one [serve] table of settings, "
                          f"got {sorted(doc) or 'nothing'}")
    out = {}
    for key, value in table_.items():
        name = key.replace("-", "_")
        if name == "fault":
            raise ConfigError(f"{path}: fault is taken from the command line only (--fault), "
                              "never from a file")
        if name not in SETTINGS:
            raise ConfigError(f"{path}: {key} is not a setting of serve (they are: "
                              f"{', '.join(SETTINGS)})")
        out[name] = value
    return out


def _log_to_stderr(log_format: str) -> None:
    """Log lines for people, or one JSON object a line (python-json-logger): every process
    of the bank (the master, the workers and the sender are forked from this one) logs so."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(
            "{levelname}{name}{process}{message}", style="{", timestamp="time",
            rename_fields={"levelname": "level", "name": "logger", "process": "pid"}))
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
