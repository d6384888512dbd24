"""``/metrics``: every installation's name and counts, so not for anyone who asks. A scraper
sends ``Authorization: Bearer $GRADESYNC_METRICS_TOKEN``; without that variable the route is
open only under ``GRADESYNC_INSECURE_DEV=1``."""

from __future__ import annotations

import hmac

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gradesync import logs, metrics
from gradesync.ledger import Ledger
from gradesync.reconcile import prometheus as reconcile_metrics
from gradesync.settings import Settings

log = logs.get("gradesync.api")


def refusal(settings: Settings, authorization: str | None) -> JSONResponse | None:
    """The answer to a scrape that may not read the metrics, or ``None`` when it may."""
    if settings.metrics_token is None:
        if settings.insecure_dev:
            return None
        return JSONResponse(
            {
                "error": "metrics_not_configured",
                "detail": "set GRADESYNC_METRICS_TOKEN and scrape with Authorization: Bearer "
                "<token> (or GRADESYNC_INSECURE_DEV=1 in development)",
            },
            403,
        )
    scheme, _, given = (authorization or "").partition(" ")
    expected = settings.metrics_token.get_secret_value()
    # Constant time: how much of a guess matched must not show in the answer's timing.
    if scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        return None
    return JSONResponse(
        {"error": "unauthenticated", "detail": "Authorization: Bearer $GRADESYNC_METRICS_TOKEN"},
        401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def scrape(request: Request, ledger: Ledger, settings: Settings) -> Response:
    refused = refusal(settings, request.headers.get("authorization"))
    if refused is not None:
        log.warning("metrics", outcome="refused", status=refused.status_code)
        return refused
    metrics.refresh(ledger)
    reconcile_metrics.refresh(ledger, settings)
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
