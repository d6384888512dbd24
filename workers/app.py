"""The Celery application."""

from __future__ import annotations

from celery import Celery

app = Celery("gradesync")
app.config_from_object("celeryconfig")
