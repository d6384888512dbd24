"""The web console for the people who fix the data (``/console`` on the ingress): what is
stuck, why, and a button to try again after the fix. See ``routes`` for the pages."""
