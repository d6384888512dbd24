"""The simulator's development credentials, as literals.

gradesync's defaults happen to be the same values so a local stack works without configuration;
the token and result-link examples in ``tests/contract/`` pin that both sides agree.
"""

from __future__ import annotations

from typing import Final

CLIENT_ID: Final = "gradesync-dev"
CLIENT_SECRET: Final = "gradesync-dev-secret"
RESULTLINK_SECRET: Final = "gradesync-dev-resultlink-secret"
RESULTLINK_PLUGIN_KEY: Final = "gradesync-dev"
