"""The status an error is answered with follows its protocol code where PROTOCOL.md §6 fixes
one: ``bad_request`` is always 400, whichever class raised it."""

from __future__ import annotations

import re
from pathlib import Path

from tchain.errors import (
    BadRequestError,
    BadRequestRuleError,
    EncodingError,
    MisconductError,
    NotFoundError,
    OfferClosedError,
    RuleError,
    SignatureError,
    TChainError,
    UnknownOfferError,
    WireError,
    wire_errors,
)


def test_bad_request_is_always_status_400():
    assert RuleError("a chain cannot pay itself", code="bad_request").status == 400
    assert RuleError("wrong", code="bad_request", status=422).status == 400
    assert TChainError("malformed", code="bad_request").status == 400
    assert EncodingError("not JSON").status == 400


def test_other_codes_keep_their_class_status():
    assert RuleError("too poor", code="insufficient_funds").status == 422
    assert RuleError("gone", code="offer_closed", status=409).status == 409


# --- one class per wire code, the same set as the table of docs/protocol.md §6 -----------------

PROTOCOL = Path(__file__).parents[3] / "docs" / "protocol.md"


def table_codes(text: str) -> set[tuple[str, int]]:
    """The (code, status) pairs of the error table of §6: a row's first cell names one code or
    several (`not_found`, `unknown_chain`), its second is their status."""
    section = text.split("\n## 6. Errors\n", 1)[1].split("\n## 7.", 1)[0]
    pairs = set()
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[1].isdigit():
            continue  # prose, the header, the rule under it
        codes = re.findall(r"`(\w+)`", cells[0])
        assert codes, f"a row of the error table names no code: {line}"
        pairs.update((code, int(cells[1])) for code in codes)
    return pairs


def class_codes() -> set[tuple[str, int]]:
    return {(code, cls.status) for code, cls in wire_errors().items()}


def test_every_wire_code_of_the_table_has_its_class_and_every_class_its_row():
    table, classes = table_codes(PROTOCOL.read_text("utf-8")), class_codes()
    assert len(table) >= 30
    assert table - classes == set(), "codes in docs/protocol.md §6 without their class"
    assert classes - table == set(), "error classes whose code is not in docs/protocol.md §6"


def test_a_missing_row_or_class_is_found():
    text = PROTOCOL.read_text("utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `offer_closed` |"))
    assert class_codes() - table_codes(text.replace(row + "\n", "")) == {("offer_closed", 409)}
    assert ("offer_closed", 409) not in class_codes() - {("offer_closed", 409)}


def test_each_class_carries_its_code_and_status_on_every_instance():
    for code, cls in wire_errors().items():
        assert issubclass(cls, WireError)
        error = cls("refused")
        assert (error.code, error.status) == (code, cls.status)
        assert error.to_dict() == {"error": code, "message": "refused"}


def test_refusals_stay_the_bases_the_shell_catches():
    assert issubclass(OfferClosedError, RuleError)
    assert issubclass(BadRequestRuleError, RuleError)
    assert BadRequestRuleError("a chain cannot pay itself").status == 400
    assert issubclass(UnknownOfferError, NotFoundError)
    assert issubclass(EncodingError, BadRequestError) and not issubclass(EncodingError, RuleError)
    marked = MisconductError.of(SignatureError("forged"))
    assert isinstance(marked, RuleError)
    assert (marked.code, marked.status) == ("bad_signature", 400)


def test_no_raise_site_passes_a_code_as_a_string():
    """A refusal names the class of its code; ``code=`` is left for errors whose code is
    data (tchain.errors.TChainError)."""
    root = Path(__file__).parents[3]
    found = [f"{path.relative_to(root)}:{n}"
             for folder in ("tchain", "validator", "federation", "cli")
             for path in sorted((root / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
             if re.search(r"\bcode=[\"']", line)]
    assert found == []
