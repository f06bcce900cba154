"""Fixtures with real parts: a real Redis/Valkey server, real `kk serve` processes, a real
SMTP server and a real HTTP receiver.

By default the suite starts its own embedded server (nothing needs to be installed or
running). With KK_TEST_REDIS_URL it uses that server instead, under a key prefix of its own,
and never flushes anything.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from kk.infra.embedded_redis import EmbeddedRedis
from tests.support.receivers import HttpReceiver, SmtpReceiver
from tests.support.server import KKServer, start_server

TEST_QUEUES = {
    "t-basic": {"processor": "tests.support.processors:flaky", "attempts": 1,
                "payload": "tests.support.processors:FlakyData"},
    "t-retry": {"processor": "tests.support.processors:flaky", "attempts": 1},
    "t-pause": {"processor": "tests.support.processors:flaky", "attempts": 1},
    "t-clean": {"processor": "tests.support.processors:flaky", "attempts": 1},
    "t-sleep": {"processor": "tests.support.processors:sleepy", "attempts": 1, "concurrency": 2},
    "t-idle": {"attempts": 1},
    "t-node": {"attempts": 1},
}  # fmt: skip


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KK_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def queue_prefix() -> str:
    # Own prefix per run: a shared server is never read or written outside it.
    return f"kkt-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as http:
        yield http


@pytest.fixture(scope="session")
def server_env(
    redis_url: str, queue_prefix: str, smtp: SmtpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return {
        "KK_REDIS_URL": redis_url,
        "KK_QUEUE_PREFIX": queue_prefix,
        "KK_QUEUES": json.dumps(TEST_QUEUES),
        "KK_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "KK_SSRF_ALLOW": json.dumps(["127.0.0.1"]),
        "KK_WEBHOOK_SECRET": "test-webhook-secret",
        "KK_SHUTDOWN_GRACE_S": "5",
    }


@pytest.fixture(scope="session")
def server(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KKServer]:
    data_dir: Path = tmp_path_factory.mktemp("kk-data")
    with start_server(data_dir, server_env) as srv:
        yield srv
