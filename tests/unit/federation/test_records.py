import pytest

from federation.records import make_record, make_well_known, verify_record, verify_well_known
from tchain.errors import VerificationError
from tchain.keys import SigningKey

BANK_KEY = SigningKey.generate()


def well_known():
    return make_well_known(BANK_KEY, name="bank1.example", chain="ab" * 32,
                           api_url="http://127.0.0.1:1", assets=["bank1.example:USD"], peers=[],
                           now=1)


def record():
    return make_record(BANK_KEY, address="alice*bank1.example", owner="cd" * 32,
                       chain="ef" * 32, validator="bank1.example")


def test_well_known_verifies_under_its_own_key_and_the_pinned_one():
    assert verify_well_known(well_known())["name"] == "bank1.example"
    assert verify_well_known(well_known(), expected_key=BANK_KEY.public_key)


def test_well_known_with_a_changed_key_is_refused_once_pinned():
    with pytest.raises(VerificationError, match="pinned"):
        verify_well_known(well_known(), expected_key=SigningKey.generate().public_key)


def test_tampered_well_known_is_refused():
    signed = well_known()
    signed["document"]["api_url"] = "http://evil.example"
    with pytest.raises(VerificationError, match="does not verify"):
        verify_well_known(signed)


def test_record_signed_by_another_key_is_refused():
    with pytest.raises(VerificationError):
        verify_record(record(), SigningKey.generate().public_key)


def test_record_with_extra_fields_is_refused():
    signed = record()
    signed["record"]["note"] = "x"
    with pytest.raises(VerificationError, match="fields"):
        verify_record(signed, BANK_KEY.public_key)


def test_redirected_record_is_refused():
    signed = record()
    signed["record"]["chain"] = "00" * 32
    with pytest.raises(VerificationError):
        verify_record(signed, BANK_KEY.public_key)
