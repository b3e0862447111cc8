"""``tchain plan show`` checks its bank's view of a plan (cli.plans.checked_view): the log
replayed under the banks' keys the wallet knows, the state derived from it, never the bank's
word. The logs are real ones, from in-process banks that ran a DvP."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cli.errors import SecurityError
from cli.plans import checked_view
from tchain.keys import SigningKey
from tests.unit.validator.test_plans import B1, B2, B3, dvp, net, signed, state

__all__ = ["net"]  # the fixture, shared


@pytest.fixture
def view(net: Any) -> tuple[dict[str, Any], str, dict[str, str]]:
    """A completed DvP as bank1 shows it to alice, its id, and the banks' keys."""
    network, banks, people = net
    plan = signed(network, banks, people, dvp(), ("alice", B1), ("bob", B2))
    keys = {n: b.key.public_key for n, b in banks.items()}
    return state(banks[B1], plan).to_dict(), plan, keys


def test_an_honest_view_is_shown_as_the_log_gives_it(view):
    shown, plan, keys = view
    assert checked_view(shown, plan, keys) == shown
    assert shown["state"] == "completed"


def test_the_state_is_the_logs_not_the_banks_word(view):
    shown, plan, keys = view
    lie = dict(shown, log=shown["log"][:4], state="completed")  # the completions left out
    assert checked_view(lie, plan, keys)["state"] != "completed"


def test_a_document_changed_after_it_was_signed_is_refused(view):
    shown, plan, keys = view
    lie = copy.deepcopy(shown)
    last = lie["log"][-1]["log"]
    last["time"] += 1
    with pytest.raises(SecurityError, match="does not verify"):
        checked_view(lie, plan, keys)


def test_a_log_under_a_key_the_wallet_does_not_pin_is_refused(view):
    shown, plan, keys = view
    with pytest.raises(SecurityError, match="does not verify"):
        checked_view(shown, plan, {**keys, B2: SigningKey.generate().public_key})
    with pytest.raises(SecurityError, match="not pinned"):
        checked_view(shown, plan, {n: k for n, k in keys.items() if n != B3})


def test_another_plans_log_is_refused(view):
    shown, _, keys = view
    with pytest.raises(SecurityError, match="answered plan"):
        checked_view(shown, f"{B1}/106/00000000-0000-4000-8000-000000000000", keys)
