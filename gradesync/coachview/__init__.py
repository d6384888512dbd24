"""The Coachview adapter: paths and field names (api), typed records (models), errors, client."""
