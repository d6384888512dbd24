"""schemathesis against the ingress's own OpenAPI: whatever it sends, never a 5xx."""

from __future__ import annotations

from typing import Any

import fakeredis
import schemathesis
from hypothesis import HealthCheck, settings

from gradesync.ledger import Ledger
from producers.api import create_app
from tests.conftest import open_ingress_settings

# Signatures would stop every request at 401; in dev mode the bodies reach validation.
app = create_app(
    Ledger(fakeredis.FakeRedis()),
    lambda rid: None,
    open_ingress_settings(),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
