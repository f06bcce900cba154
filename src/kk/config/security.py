"""Who may call the API and from where: keys, sessions, limits on guessing, the edge."""

from __future__ import annotations

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from kk.config.edge import NORMALISERS, check_key_strength
from kk.config.lists import TextList


class SecuritySettings(BaseModel):
    # Admin keys may do everything, read keys only read. `api_key` is one more admin key.
    api_key: str | None = None
    api_keys: TextList = Field(default_factory=list)
    read_api_keys: TextList = Field(default_factory=list)
    # Signs dashboard session cookies; unset = generated once into <data_dir>/session.secret.
    session_secret: str | None = Field(None, min_length=16)
    session_ttl_s: int = Field(12 * 3600, ge=60, le=30 * 86_400)
    # Mutations per minute per key (or client IP when auth is off); 0 = no limit.
    rate_limit_per_minute: int = Field(0, ge=0, le=1_000_000)
    # Wrong keys per minute per client IP before it gets 429 (key guessing); 0 = no limit.
    auth_failures_per_minute: int = Field(20, ge=0, le=1_000_000)
    # Host names served besides loopback ("api.example.com", "*.example.com"). Enforced in
    # open mode always, with keys only when set (see docs/security.md).
    allowed_hosts: TextList = Field(default_factory=list)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs or CIDRs).
    trusted_proxies: TextList = Field(default_factory=list)
    # Origins whose pages may call /api with a key (CORS), e.g. "http://localhost:5173".
    cors_origins: TextList = Field(default_factory=list)

    @field_validator("api_key", "api_keys", "read_api_keys", mode="after")
    @classmethod
    def _strong_keys(cls, value: str | list[str] | None) -> str | list[str] | None:
        for key in [value] if isinstance(value, str) else value or []:
            check_key_strength(key)
        return value

    @field_validator("api_keys", mode="after")
    @classmethod
    def _with_single_key(cls, keys: list[str], info: ValidationInfo) -> list[str]:
        single = info.data.get("api_key")
        return [single, *keys] if single and single not in keys else keys

    @field_validator("allowed_hosts", "trusted_proxies", "cors_origins", mode="after")
    @classmethod
    def _edge_lists(cls, value: list[str], info: ValidationInfo) -> list[str]:
        assert info.field_name is not None  # always set for a field validator
        return [NORMALISERS[info.field_name](item) for item in value]

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys or self.read_api_keys)
