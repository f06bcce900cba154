"""All configuration: `KK_*` environment variables over an optional TOML file.

The file is named by `KK_CONFIG_FILE`; environment variables win over it. Nested values
(queues, alert rules) are given as JSON in the environment, e.g.
`KK_QUEUES='{"reports": {"concurrency": 2, "processor": "myapp.jobs:build_report"}}'`.

`Settings` is the union of one group per domain (`ServerSettings`, `RedisSettings`,
`SecuritySettings`, ...), each in its own module with its own checks, so the variable
names stay flat (`KK_CACHE_PREFIX`, not `KK_CACHE__PREFIX`). Code that needs one domain's
settings may ask for that group's type. Only checks that join two groups live here.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kk.config.cache import CacheSettings
from kk.config.health import HealthSettings
from kk.config.processors import ProcessorSettings
from kk.config.queues import BUILTIN_QUEUES, AlertRules, QueueConfig, QueueSettings
from kk.config.redis import DatabaseSettings, RedisSettings
from kk.config.schedules import (
    SCHEDULE_NAME_RE,
    ScheduleConfig,
    ScheduleSettings,
    default_schedules,
)
from kk.config.security import SecuritySettings
from kk.config.server import LOOPBACK_HOSTS, ServerSettings

__all__ = [
    "BUILTIN_QUEUES",
    "LOOPBACK_HOSTS",
    "AlertRules",
    "QueueConfig",
    "ScheduleConfig",
    "Settings",
    "get_settings",
]


# Field order is the reverse of this list (pydantic collects bases from the last): the
# server's data_dir is validated before the paths that default under it.
class Settings(
    ScheduleSettings,
    HealthSettings,
    CacheSettings,
    ProcessorSettings,
    QueueSettings,
    SecuritySettings,
    DatabaseSettings,
    RedisSettings,
    ServerSettings,
    BaseSettings,
):
    model_config = SettingsConfigDict(env_prefix="KK_", extra="ignore")

    @model_validator(mode="after")
    def _check_schedules(self) -> Settings:
        if self.schedules is None:
            self.schedules = default_schedules(self.cleanup_finished_age_s)
        for name, schedule in self.schedules.items():
            if not SCHEDULE_NAME_RE.fullmatch(name):
                raise ValueError(f"schedule name '{name}' must match {SCHEDULE_NAME_RE.pattern}")
            if schedule.queue not in self.queues:
                raise ValueError(f"schedule '{name}': queue '{schedule.queue}' is not registered")
        return self

    @model_validator(mode="after")
    def _worker_queues_registered(self) -> Settings:
        unknown = [name for name in self.worker_queues or [] if name not in self.queues]
        if unknown:
            raise ValueError(f"worker_queues names queues that are not registered: {unknown}")
        return self

    @model_validator(mode="after")
    def _cache_apart_from_queues(self) -> Settings:
        # Queue keys are `<queue_prefix>:<queue>:...`: if one prefix extends the other, a cache
        # key could name a queue key (and the other way round) on a shared server.
        queue_ns = f"{self.queue_prefix}:"
        if self.cache_prefix.startswith(queue_ns) or queue_ns.startswith(self.cache_prefix):
            raise ValueError(
                f"cache_prefix '{self.cache_prefix}' overlaps the queue prefix "
                f"'{self.queue_prefix}': choose prefixes where neither starts with the other"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("KK_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


@lru_cache
def get_settings() -> Settings:
    return Settings()
