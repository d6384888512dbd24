"""Flower reads this file (its default --conf) when started as ``celery -A workers flower``
from the project root. It makes Flower safe by default: no dashboard without basic auth."""

import os
import sys

_auth = os.environ.get("FLOWER_BASIC_AUTH", "").strip()
if not _auth and os.environ.get("GRADESYNC_INSECURE_DEV") != "1":
    sys.stderr.write(
        "Flower refuses to start without authentication: set FLOWER_BASIC_AUTH=user:password "
        "(several: comma-separated), or GRADESYNC_INSECURE_DEV=1 on a development machine.\n"
    )
    raise SystemExit(2)
if _auth:
    basic_auth = [pair.strip() for pair in _auth.split(",") if pair.strip()]
# Prometheus can scrape Flower's own /metrics (task counts and runtimes per task name).
port = int(os.environ.get("FLOWER_PORT", "5555"))
address = os.environ.get("FLOWER_ADDRESS", "127.0.0.1")

# Flower serves /metrics without asking who is there (its handler lacks tornado's
# @authenticated, unlike every page and API route): the task names, counts and worker names
# are not for anyone who can reach the port. Prometheus scrapes it with basic_auth instead.
from flower.views import monitor  # noqa: E402
from tornado import web  # noqa: E402

monitor.Metrics.get = web.authenticated(monitor.Metrics.get)
