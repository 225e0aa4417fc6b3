"""schemathesis fuzzes every documented operation: no 5xx, every response matches the schema.

Each operation is one test, driven through hypothesis directly: schemathesis' pytest fixture
loader (`from_fixture`) relies on pytest internals that pytest 9.1 removed.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.api import REGISTRY
from config.settings import settings_from_mapping

# The bar: no 5xx, only documented statuses, bodies that match the document. Requests
# that fit the schema but name things the market lacks (symbol "00") are rightly 400, so the
# "valid data must be accepted" check does not apply.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = [f"{op.method.upper()} {op.path}" for op in REGISTRY.operations]


@pytest.fixture
def fuzz_app(demo_exchange, tmp_path):
    """The app with a small download cap, so a random POST /backtest range is refused (422)
    instead of downloading years of candles, and one backtest worker."""
    settings = settings_from_mapping(
        {
            "DATA_DIR": str(tmp_path),
            "DEMO_PORT": str(demo_exchange.port),
            "BACKTEST_MAX_DOWNLOAD": "3000",
            "BACKTEST_WORKERS": "1",
        }
    )
    application = create_app(settings)
    yield application
    application.extensions["kryptelion"].db.close()


def test_every_registered_operation_is_fuzzed():
    assert len(OPERATIONS) >= 12 and "POST /backtest" in OPERATIONS


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_openapi_document(fuzz_app, label):
    operation = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app).find_operation_by_label(
        label
    )
    assert operation is not None, f"{label} is missing from /openapi.json"

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
