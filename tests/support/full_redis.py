"""A private Redis server whose memory a test may fill (CONFIG SET maxmemory), and what it
counts (INFO commandstats, /metrics samples)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

from kk.infra.embedded_redis import EmbeddedRedis

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextlib.contextmanager
def private_redis(data_dir: Path) -> Iterator[tuple[str, redis.Redis]]:
    """The service's URL and an admin client (the service's own user may not CONFIG SET)."""
    server = EmbeddedRedis(data_dir)
    url = server.start()
    direct = redis.Redis.from_url(server.admin_url, decode_responses=True)
    try:
        yield url, direct
    finally:
        direct.close()
        server.stop()


def used_memory(direct: redis.Redis) -> int:
    return int(direct.info("memory")["used_memory"])


def fill(direct: redis.Redis) -> None:
    """Redis refuses writes: maxmemory well below what it uses (used memory drops by a few
    hundred KB as buffers are freed: a close margin would not stay full)."""
    direct.config_set("maxmemory", used_memory(direct) * 3 // 4)


def script_calls(direct: redis.Redis) -> int:
    """Script calls the server saw since the last CONFIG RESETSTAT, refused ones included."""
    stats = direct.info("commandstats")
    return sum(
        int(s.get("calls", 0)) + int(s.get("rejected_calls", 0))
        for name, s in stats.items()
        if name.removeprefix("cmdstat_").startswith(("eval", "fcall"))
    )


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of `name` over the samples carrying `labels` (and any others)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)
