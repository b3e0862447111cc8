"""Bad input, generated: schemathesis reads /openapi.json and throws valid and invalid requests
at every endpoint of the validator app (its real LMDB store, in-process). No answer is a 5xx,
every answer matches the documented schema, status and content type, and every request
outside the schema is refused with a JSON 4xx. Bounded: a few dozen cases per endpoint."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tchain.auth import authorization_header
from tchain.clock import now_ms
from tchain.encoding import canonical
from tchain.intents import register_request
from tchain.keys import SigningKey
from validator.app import create_app
from validator.config import init_bank

BANK = "fuzz.example"
CUSTOMER = SigningKey.generate()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz") / "bank"
    init_bank(data, name=BANK, url="http://127.0.0.1:9", assets=("USD",))
    app = create_app({"DATA_DIR": str(data), "RATE_LIMIT": 0})
    client = app.test_client()
    answer = client.post("/v1/chains", data=canonical(register_request(
        CUSTOMER, "alice", now_ms(), bank=BANK, kyc_record={"legal_name": "Alice"})))
    assert answer.status_code == 201
    app.extensions["tchain.bank"].ledger.deposit(f"alice*{BANK}", f"{BANK}:USD", 100)
    return app


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(app):
    loaded = schemathesis.openapi.from_wsgi("/openapi.json", app)
    loaded.config.generation.update(
        modes=["positive", "negative"], max_examples=25, allow_extra_parameters=False)
    return loaded


@schema.auth()
class SignedReads:
    """Signs GET requests without a query as the registered customer, so reads reach past
    authentication (to 403, 404 or 200); everything else goes as generated."""

    def get(self, case, ctx):
        return CUSTOMER

    def set(self, case, key, ctx):
        if case.method == "GET" and not case.query:
            case.headers = {**(case.headers or {}), "Authorization": authorization_header(
                key, "GET", case.formatted_path, "", b"", now_ms(), bank=BANK)}


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_endpoint_answers_bad_input_with_a_json_4xx_and_never_a_5xx(case):
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance,
                                   negative_data_rejection])
