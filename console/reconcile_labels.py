"""The console's labels for reconciliation (issue 26), kept beside the shared ones."""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "reconciliation": ("Reconciliation with the LMS", "Afstemming met de LMS'en"),
    "reconcile_last": ("Last run", "Laatste run"),
    "reconcile_next": ("Next run", "Volgende run"),
    "reconcile_missed": (
        "Found without a webhook (7 days)",
        "Gevonden zonder webhook (7 dagen)",
    ),
    "reconcile_never": ("not run yet", "nog niet gedraaid"),
    "reconcile_recorded": ("recorded", "vastgelegd"),
    "reconcile_resumes": (
        "stopped by the call cap; resumes",
        "gestopt door het maximum; gaat verder",
    ),
    "reconcile_lms_failed": (
        "broke off, the LMS failed; the next run resumes",
        "afgebroken, de LMS faalde; de volgende run gaat verder",
    ),
    "reconcile_warning": (
        "completion(s) this week reached gradesync only by reconciliation: the webhook is not "
        "delivering (check the plugin's URL, secret and Moodle's cron).",
        "voltooiing(en) deze week kwamen alleen via de afstemming binnen: de webhook levert niet "
        "(controleer URL, geheim en Moodle's cron).",
    ),
}
