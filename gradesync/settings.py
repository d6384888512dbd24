"""Every environment variable gradesync reads, with defaults that run against a local stack."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The simulator accepts exactly these; a real Coachview gets its own from the environment.
SIM_CLIENT_ID = "gradesync-dev"
SIM_CLIENT_SECRET = "gradesync-dev-secret"
SIM_RESULTLINK_SECRET = "gradesync-dev-resultlink-secret"
SIM_RESULTLINK_PLUGIN_KEY = "gradesync-dev"

Delivery = Literal["rest", "resultlink"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    redis_url: str = Field("redis://localhost:6379/0", alias="REDIS_URL")

    coachview_base_url: str = Field("http://localhost:8100", alias="COACHVIEW_BASE_URL")
    coachview_client_id: str = Field(SIM_CLIENT_ID, alias="COACHVIEW_CLIENT_ID")
    coachview_client_secret: SecretStr = Field(
        SecretStr(SIM_CLIENT_SECRET), alias="COACHVIEW_CLIENT_SECRET"
    )
    coachview_scope: str = Field("api", alias="COACHVIEW_SCOPE")
    coachview_timeout_s: float = Field(10.0, alias="COACHVIEW_TIMEOUT_S", gt=0)
    # Which Coachview person field is tried first for the LMS person id.
    coachview_person_match: str = Field("externId,id", alias="COACHVIEW_PERSON_MATCH")
    coachview_delivery: Delivery = Field("rest", alias="COACHVIEW_DELIVERY")
    coachview_resultlink_secret: SecretStr = Field(
        SecretStr(SIM_RESULTLINK_SECRET), alias="COACHVIEW_RESULTLINK_SECRET"
    )
    coachview_resultlink_plugin_key: str = Field(
        SIM_RESULTLINK_PLUGIN_KEY, alias="COACHVIEW_RESULTLINK_PLUGIN_KEY"
    )
    # Person and course look-ups change rarely; caching them is what keeps a completion cheap.
    coachview_cache_ttl_s: int = Field(3600, alias="COACHVIEW_CACHE_TTL_S", ge=0)
    # Requests kept back from the daily budget: in-flight requests of other workers, and
    # room for a person to use the API by hand.
    coachview_budget_reserve: int = Field(25, alias="COACHVIEW_BUDGET_RESERVE", ge=0)

    retry_max_attempts: int = Field(30, alias="GRADESYNC_RETRY_MAX_ATTEMPTS", ge=0)
    retry_time: time = Field(time(3, 0), alias="GRADESYNC_RETRY_TIME")
    timezone: str = Field("Europe/Amsterdam", alias="GRADESYNC_TIMEZONE")

    transient_max_retries: int = Field(6, alias="GRADESYNC_TRANSIENT_MAX_RETRIES", ge=0)
    transient_backoff_s: float = Field(4.0, alias="GRADESYNC_TRANSIENT_BACKOFF_S", ge=0)
    transient_backoff_max_s: float = Field(120.0, alias="GRADESYNC_TRANSIENT_BACKOFF_MAX_S", ge=0)

    visibility_timeout_s: int = Field(3600, alias="GRADESYNC_VISIBILITY_TIMEOUT_S", gt=0)
    sweep_interval_s: float = Field(60.0, alias="GRADESYNC_SWEEP_INTERVAL_S", gt=0)
    log_level: str = Field("INFO", alias="GRADESYNC_LOG_LEVEL")
    log_format: str = Field("json", alias="GRADESYNC_LOG_FORMAT")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone name
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def person_match_order(self) -> tuple[str, ...]:
        return tuple(f.strip() for f in self.coachview_person_match.split(",") if f.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
