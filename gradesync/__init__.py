"""gradesync: LMS course completions written back into Coachview."""

__version__ = "0.1.0"
