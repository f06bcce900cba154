"""All configuration in one place: `KK_*` environment variables over an optional TOML file.

The file is named by `KK_CONFIG_FILE`; environment variables win over it. Nested values
(queues, alert rules) are given as JSON in the environment, e.g.
`KK_QUEUES='{"reports": {"concurrency": 2, "processor": "myapp.jobs:build_report"}}'`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kk.schedules.config import SCHEDULE_NAME_RE, ScheduleConfig, default_schedules

BUILTIN_QUEUES = ("email", "image-processing", "cleanup", "webhook")
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


class AlertRules(BaseModel):
    """Critical thresholds per queue; `None` disables a rule. `warning` fires at
    `warning_ratio` times the threshold, `critical` at or above it."""

    waiting: int | None = 100
    failed: int | None = 50
    failure_ratio: float | None = 0.5
    failure_ratio_min_jobs: int = 20
    # The failure ratio is failed / (completed + failed) over this many recent minutes.
    failure_ratio_window_minutes: int = Field(60, ge=1, le=1440)
    oldest_waiting_seconds: int | None = 600
    paused: bool = True
    warning_ratio: float = Field(0.5, gt=0, le=1)


class QueueConfig(BaseModel):
    concurrency: int = Field(5, ge=1, le=1000)
    attempts: int = Field(3, ge=1, le=100)
    backoff_type: Literal["fixed", "exponential"] = "exponential"
    backoff_delay_ms: int = Field(1000, ge=0, le=86_400_000)
    # How many finished jobs BullMQ keeps (older ones are removed as new ones finish).
    keep_completed: int = Field(1000, ge=0)
    keep_failed: int = Field(5000, ge=0)
    # "package.module:function" of an async processor; built-in queues have their own.
    processor: str | None = None
    # "package.module:Model", a pydantic model that validates the job data at add time.
    payload: str | None = None
    alerts: AlertRules = Field(default_factory=AlertRules)


def _default_queues() -> dict[str, QueueConfig]:
    return {name: QueueConfig() for name in BUILTIN_QUEUES}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KK_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    log_level: str = "info"
    log_json: bool = False

    # Redis: unset = start a private embedded server in the data dir.
    redis_url: str | None = None
    cache_redis_url: str | None = None
    # Longest an API call waits for Redis: a Redis that does not answer (hung, paused,
    # saturated) gets a 503 within this bound. KK_REDIS_ANSWER_TIMEOUT_S, or its older name
    # KK_REDIS_TIMEOUT_S (the first wins when both are set).
    redis_timeout_s: float = Field(
        3.0,
        gt=0,
        le=60,
        validation_alias=AliasChoices(
            "kk_redis_answer_timeout_s",
            "kk_redis_timeout_s",
            "redis_answer_timeout_s",
            "redis_timeout_s",
        ),
    )
    queue_prefix: str = "bull"

    database_url: str | None = None

    # Security: admin keys may do everything, read keys only read.
    api_key: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    read_api_keys: list[str] = Field(default_factory=list)

    # Security.
    # Signs dashboard session cookies; unset = generated once into <data_dir>/session.secret.
    session_secret: str | None = Field(None, min_length=16)
    session_ttl_s: int = Field(12 * 3600, ge=60, le=30 * 86_400)
    # Mutations per minute per key (or client IP when auth is off); 0 = no limit.
    rate_limit_per_minute: int = Field(0, ge=0, le=1_000_000)
    # Wrong keys per minute per client IP before it gets 429 (key guessing); 0 = no limit.
    auth_failures_per_minute: int = Field(20, ge=0, le=1_000_000)
    # Host names served besides loopback ("api.example.com", "*.example.com"). Enforced in
    # open mode always, with keys only when set (see docs/security.md).
    allowed_hosts: list[str] = Field(default_factory=list)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs).
    trusted_proxies: list[str] = Field(default_factory=list)
    # Origins whose pages may call /api with a key (CORS), e.g. "http://localhost:5173".
    cors_origins: list[str] = Field(default_factory=list)

    # Queues and workers.
    queues: dict[str, QueueConfig] = Field(default_factory=_default_queues)
    run_workers: bool = True
    # The tuned worker, batched adds and lean Redis pools use private parts of bullmq and
    # redis-py (kk.compat, pinned versions); false runs on their stock, public API.
    tuned_worker: bool = True
    worker_queues: list[str] | None = None
    # `kk worker` serves /metrics on this port when set (off by default), on loopback
    # unless a host is given.
    worker_metrics_port: int | None = Field(None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    lock_duration_ms: int = Field(30_000, ge=1000)
    stalled_interval_ms: int = Field(30_000, ge=500)
    max_stalled_count: int = Field(1, ge=0)
    shutdown_grace_s: float = Field(30.0, ge=0)

    # Limits.
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_job_data_bytes: int = Field(65_536, ge=256)
    max_page_size: int = Field(1000, ge=1)
    # Open result waits and event streams (each holds a Redis connection): per client IP
    # and per process; over either limit a request gets 429.
    event_streams_per_client: int = Field(5, ge=1, le=10_000)
    event_streams_total: int = Field(100, ge=1, le=100_000)
    event_keepalive_s: float = Field(15.0, gt=0, le=300)  # SSE comment when nothing happens
    max_delay_ms: int = Field(365 * 86_400_000, ge=0)
    # Dashboard search reads at most this many jobs of one state (newest first).
    dashboard_search_max_scan: int = Field(5000, ge=1, le=1_000_000)

    # Processors.
    smtp_url: str | None = None
    mail_from: str = "KK Backend <no-reply@localhost>"
    storage_root: Path | None = None
    temp_dir: Path | None = None
    cleanup_max_age_s: int = Field(86_400, ge=0)
    cleanup_finished_age_s: int = Field(7 * 86_400, ge=0)
    webhook_secret: str | None = None
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    http_max_response_bytes: int = Field(20 * 1_048_576, ge=1024)
    image_max_pixels: int = Field(40_000_000, ge=1)
    # Pixels an image job may produce: an upscale of a tiny file to 10000x10000 would
    # otherwise allocate gigabytes (RGBA, plus the resampling buffer).
    image_max_output_pixels: int = Field(25_000_000, ge=1)
    # Hosts or CIDR ranges that workers may fetch although they are private (e.g. in tests).
    ssrf_allow: list[str] = Field(default_factory=list)

    # Dashboard and schedules.
    # Cron schedules by name; unset = the built-in ones (daily-cleanup, hourly-trim). Whether
    # each is enabled is kept in Redis once changed through the API, so all processes agree.
    schedules: dict[str, ScheduleConfig] | None = None

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

    # Health and metrics.
    # Each dependency check gives up after this long, so a hung dependency can't hang a probe.
    health_timeout_ms: int = Field(1000, ge=50, le=60_000)
    health_redis_memory_threshold_mb: float = Field(1024, gt=0)
    health_redis_connections_threshold: int = Field(100, ge=1)
    metrics_enabled: bool = True

    # Cache and database.
    # The database is `database_url` above (unset = SQLite file `kk.sqlite3` in the data dir).
    demo_users: int = Field(1000, ge=0, le=1_000_000)  # seeded once, into an empty table
    db_connect_timeout_s: float = Field(3.0, gt=0, le=60)
    db_query_timeout_ms: int = Field(5000, ge=50, le=60_000)
    # Every cache key lives under this prefix, apart from the queues' `<queue_prefix>:` keys.
    cache_prefix: str = Field("kk:cache:", min_length=1, max_length=64)
    cache_default_ttl_s: int = Field(300, ge=1, le=30 * 86_400)
    cache_max_ttl_s: int = Field(30 * 86_400, ge=1)
    cache_ttl_jitter: float = Field(0.1, ge=0, le=0.5)  # +-10 %: entries don't expire together
    cache_max_value_bytes: int = Field(512 * 1024, ge=64)
    cache_max_batch: int = Field(1000, ge=1, le=100_000)
    cache_max_scan_count: int = Field(500, ge=1, le=10_000)
    cache_negative_ttl_s: int = Field(60, ge=1, le=86_400)  # how long a missing id is remembered
    cache_lock_ms: int = Field(3000, ge=100, le=60_000)  # cross-process single-flight lock
    # Bloom filter of existing user ids; 0 disables it (negative caching still applies).
    cache_bloom_capacity: int = Field(100_000, ge=0, le=100_000_000)
    cache_bloom_refresh_s: int = Field(600, ge=0)  # rebuild period; 0 = only at start

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

    @field_validator("queues", mode="after")
    @classmethod
    def _keep_builtins(cls, queues: dict[str, QueueConfig]) -> dict[str, QueueConfig]:
        from kk.errors import AppError
        from kk.queues.names import validate_queue_name

        merged = _default_queues()
        merged.update(queues)
        for name in merged:
            try:
                validate_queue_name(name)
            except AppError as exc:
                raise ValueError(f"queue '{name}': {exc.message}") from None
        return merged

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.storage_root is None:
            self.storage_root = self.data_dir / "storage"
        if self.temp_dir is None:
            self.temp_dir = self.data_dir / "tmp"
        if self.redis_url and "{" not in self.queue_prefix:
            from kk.infra.redis_client import redis_mode_of

            if redis_mode_of(self.redis_url) == "cluster":
                # BullMQ's Lua scripts touch many keys of a queue: on a cluster they must
                # share a slot, which a hash tag in the prefix guarantees.
                self.queue_prefix = "{" + self.queue_prefix + "}"
        if self.api_key and self.api_key not in self.api_keys:
            self.api_keys = [self.api_key, *self.api_keys]
        return self

    @field_validator("api_key", "api_keys", "read_api_keys", mode="after")
    @classmethod
    def _strong_keys(cls, value: str | list[str] | None) -> str | list[str] | None:
        from kk.edge.config import check_key_strength

        for key in [value] if isinstance(value, str) else value or []:
            check_key_strength(key)
        return value

    @field_validator("allowed_hosts", "trusted_proxies", "cors_origins", mode="after")
    @classmethod
    def _edge_lists(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from kk.edge.config import NORMALISERS

        assert info.field_name is not None  # always set for a field validator
        return [NORMALISERS[info.field_name](item) for item in value]

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys or self.read_api_keys)

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

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
