"""Amounts as people read them: minor units until a bank says an asset's decimals."""

from cli.units import show

USD = "bank1.example:USD"


def test_minor_units_when_no_bank_says_the_decimals():
    assert show(1050, USD) == "1050"
    assert show(-7, USD, signed=True) == "-7"
    assert show(7, USD, signed=True) == "+7"


def test_decimals_when_known():
    assert show(1050, USD, {USD: 2}) == "10.50"
    assert show(-5, USD, {USD: 2}, signed=True) == "-0.05"
    assert show(100, USD, {"other:X": 2}) == "100"
