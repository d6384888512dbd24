"""The Celery application."""

from __future__ import annotations

from celery import Celery

# Every task event passes through workers/privacy.py: nothing personal reaches Flower.
app = Celery("gradesync", events="workers.privacy:RedactingEvents")
app.config_from_object("celeryconfig")
