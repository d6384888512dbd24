"""``gradesync doctor``: read-only checks of the live configuration, one module per area.

Each area returns :class:`~gradesync.doctor.model.Check` results; :mod:`.runner` collects them
and the CLI only renders. Nothing here writes: not to Redis, not to Coachview, not to an LMS.
"""
