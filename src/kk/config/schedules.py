"""What a cron schedule is in configuration, and the built-in ones.

Part of the configuration layer: it imports nothing else of the service.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

# Schedule names become BullMQ job scheduler ids and URL segments: no ':' (BullMQ joins ids
# with it) and nothing that needs escaping.
SCHEDULE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: str
    job: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    # 5 fields, or 6 with seconds first (as BullMQ and cron-parser read them).
    cron: str = Field(min_length=9, max_length=120)
    timezone: str = "UTC"
    description: str = Field("", max_length=300)
    data: dict[str, Any] = Field(default_factory=dict)
    # The state until someone enables or disables it through the API (then Redis decides).
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value.split(" ")) not in (5, 6) or not croniter.is_valid(
            value, second_at_beginning=True
        ):
            raise ValueError(f"'{value}' is not a 5- or 6-field cron expression")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone") from None
        return value


def default_schedules(finished_age_s: int) -> dict[str, ScheduleConfig]:
    """The data is the cleanup processor's: one job kind sweeps temp files, the other trims
    finished jobs of every queue."""
    return {
        "daily-cleanup": ScheduleConfig(
            queue="cleanup",
            job="cleanup-temp-files",
            cron="0 2 * * *",
            description="Clean temporary files every day",
            data={"cleanTempFiles": True, "trimFinishedJobs": False},
        ),
        "hourly-trim": ScheduleConfig(
            queue="cleanup",
            job="trim-finished-jobs",
            cron="0 * * * *",
            description="Remove finished jobs older than the configured age, every hour",
            data={
                "cleanTempFiles": False,
                "trimFinishedJobs": True,
                "finishedOlderThanSeconds": finished_age_s,
            },
        ),
    }


class ScheduleSettings(BaseModel):
    # Cron schedules by name; unset = the built-in ones (daily-cleanup, hourly-trim). Whether
    # each is enabled is kept in Redis once changed through the API, so all processes agree.
    schedules: dict[str, ScheduleConfig] | None = None
