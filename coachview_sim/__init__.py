"""A Coachview simulator for tests, demos and benchmarks (``gradesync sim``)."""
