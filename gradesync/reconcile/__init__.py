"""Reconciliation with each LMS (issue 26): a nightly look at which learners completed the
courses Coachview knows, recording what no webhook delivered. Rules in :mod:`.plan` (pure),
Redis in :mod:`.store`, one run in :mod:`.run`, the figures operators see in :mod:`.figures`."""
