"""Producers: turn LMS completion events into ledger records and queued pipeline runs."""
