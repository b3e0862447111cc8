"""Payments through correspondent banks, in process (docs/adr/0015-correspondent-routes.md):
every hop mirrors its next hop's first answer; money is neither made nor lost."""

from __future__ import annotations

from pathlib import Path

from tests.routenet import line, routed, settle_all, sound


def test_three_banks_in_a_line_pay_both_ways(tmp_path: Path) -> None:
    clock, (b1, b2, b3), net = line(tmp_path, 3)
    alice, carol = b1.join("alice"), b3.join("carol")
    b1.deposit(alice, 500)
    b3.deposit(carol, 500)
    b1.submit(alice, "payment", routed(carol, b3, [b2], "bank1.example:USD", 101, 100))
    settle_all(clock, net)
    assert b1.balance(alice, "bank1.example:USD") == (399, 0)
    assert b3.balance(carol, "bank2.example:USD") == (100, 0)
    b3.submit(carol, "payment", routed(alice, b1, [b2], "bank3.example:USD", 51, 50))
    settle_all(clock, net)
    assert b3.balance(carol, "bank3.example:USD") == (449, 0)
    assert b1.balance(alice, "bank2.example:USD") == (50, 0)
    sound([b1, b2, b3])
