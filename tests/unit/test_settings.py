"""Settings: environment over the TOML file over defaults; built-in queues always present."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kk.config import Settings

SECRET_KEY = "unit-test-admin-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("KK_"):
            monkeypatch.delenv(name)


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.data_dir == tmp_path / "data"
    assert settings.redis_url is None and settings.database_url is None
    assert set(settings.queues) == {"email", "image-processing", "cleanup", "webhook"}
    assert settings.storage_root == tmp_path / "data" / "storage"
    assert not settings.auth_enabled


def test_config_file_and_environment(tmp_path, monkeypatch):
    config = tmp_path / "kk.toml"
    config.write_text(
        'port = 9000\nhost = "127.0.0.1"\n[queues.reports]\nconcurrency = 2\nattempts = 5\n'
    )
    monkeypatch.setenv("KK_CONFIG_FILE", str(config))
    monkeypatch.setenv("KK_HOST", "::1")
    monkeypatch.setenv("KK_API_KEY", SECRET_KEY)
    settings = Settings()
    assert settings.port == 9000
    assert settings.host == "::1", "the environment wins over the file"
    assert settings.queues["reports"].concurrency == 2
    assert settings.queues["reports"].attempts == 5
    assert "email" in settings.queues, "built-ins stay registered"
    assert settings.api_keys == [SECRET_KEY] and settings.auth_enabled


def test_queues_from_json_environment(monkeypatch):
    monkeypatch.setenv("KK_QUEUES", '{"email": {"concurrency": 9}}')
    assert Settings().queues["email"].concurrency == 9


def test_bad_queue_configuration_is_refused(monkeypatch):
    monkeypatch.setenv("KK_QUEUES", '{"Bad Name": {}}')
    with pytest.raises(ValidationError, match="Bad Name"):
        Settings()
    monkeypatch.setenv("KK_QUEUES", '{"ok": {"concurrency": 0}}')
    with pytest.raises(ValidationError):
        Settings()


def test_every_field_is_read_from_its_flat_variable_whatever_its_group(monkeypatch, tmp_path):
    """Settings is split into one group per domain; the variable names stay `KK_<FIELD>`."""
    from kk.config.cache import CacheSettings
    from kk.config.security import SecuritySettings

    monkeypatch.setenv("KK_CACHE_PREFIX", "mine:")
    monkeypatch.setenv("KK_RATE_LIMIT_PER_MINUTE", "7")
    monkeypatch.setenv("KK_REDIS_ANSWER_TIMEOUT_S", "1.5")
    monkeypatch.setenv("KK_DATA_DIR", str(tmp_path / "d"))
    settings = Settings()
    assert isinstance(settings, CacheSettings) and isinstance(settings, SecuritySettings)
    assert settings.cache_prefix == "mine:" and settings.rate_limit_per_minute == 7
    assert settings.redis_timeout_s == 1.5
    # Paths default under the data dir, unless given.
    assert settings.temp_dir == tmp_path / "d" / "tmp"
    monkeypatch.setenv("KK_TEMP_DIR", str(tmp_path / "t"))
    assert Settings().temp_dir == tmp_path / "t"


def test_checks_that_join_two_groups(monkeypatch):
    monkeypatch.setenv("KK_REDIS_URL", "redis+cluster://127.0.0.1:7000")
    assert Settings().queue_prefix == "{bull}", "a cluster needs a hash-tagged prefix"
    monkeypatch.delenv("KK_REDIS_URL")
    monkeypatch.setenv("KK_WORKER_QUEUES", '["email", "nope"]')
    with pytest.raises(ValidationError, match="nope"):
        Settings()
