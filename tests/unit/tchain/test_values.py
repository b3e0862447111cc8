"""The value grammars of PROTOCOL.md §1 and §3 are matched whole: a trailing newline, which
"^...$" lets through, is refused like any other stray character."""

import pytest

from tchain.errors import EncodingError
from tchain.values import (
    UAI,
    parse_address,
    parse_amount,
    parse_delta,
    parse_name,
    parse_validator_name,
)

PARSERS = [(parse_amount, "1050"), (parse_delta, "-1050"), (parse_name, "alice"),
           (parse_validator_name, "bank1.example"), (parse_address, "alice*bank1.example"),
           (UAI.parse, "bank1.example:USD")]


@pytest.mark.parametrize(("parser", "good"), PARSERS)
def test_a_value_is_accepted_as_is_and_refused_with_a_newline_or_space_around_it(parser, good):
    parser(good)
    for bad in (good + "\n", "\n" + good, good + " ", good + "\r\n"):
        with pytest.raises(EncodingError):
            parser(bad)
