"""Key guessing: wrong keys are counted per client IP in Redis, shared by every process.

After KK_AUTH_FAILURES_PER_MINUTE wrong keys in a minute, the client gets 429 with
Retry-After until the minute ends, for every request that carries a key or signs in,
the right key included: were the right key let through, 200 against 429 would tell a
guesser which guess was right. Clients with another IP are not affected.

The count is read only when a key is wrong (one INCR); a right key costs a dictionary
lookup: each process remembers the clients it saw go over the limit. So a client over the
limit can be refused a little later by a process that has not yet seen one of its
failures, which it only learns by failing there too: at most one extra try per process.
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import FastAPI, Request
from redis.exceptions import RedisError

from kk.errors import AppError, ErrorCode

log = logging.getLogger("kk.security")
AUTH_FAIL_PREFIX = "kk:authfail:"
_MAX_REMEMBERED = 10_000


def _window(now: float) -> int:
    return int(now // 60)


def _refuse(limit: int, now: float) -> AppError:
    retry = max(1, math.ceil((_window(now) + 1) * 60 - now))
    return AppError(
        ErrorCode.RATE_LIMITED,
        f"Too many wrong API keys from this client ({limit} per minute); retry in {retry}s",
        headers={"Retry-After": str(retry)},
    )


class AuthFailures:
    def __init__(self, limit: int, namespace: str) -> None:
        self.limit = limit
        # Per deployment (its queue prefix): services sharing a Redis keep their own counts.
        self.prefix = f"{AUTH_FAIL_PREFIX}{namespace}:"
        self._locked: dict[str, int] = {}  # client -> the window it is locked out for

    def check(self, client: str) -> None:
        """Before a key is compared: refuse a client known to be over the limit."""
        if self.limit and self._locked.get(client) == _window(time.time()):
            raise _refuse(self.limit, time.time())

    async def failed(self, request: Request, client: str) -> None:
        """Count a wrong key; refuse at once when this one went over the limit."""
        if not self.limit:
            return
        now = time.time()
        window = _window(now)
        counter = f"{self.prefix}{client}:{window}"
        try:
            async with request.app.state.runtime.redis.pipeline(transaction=False) as pipe:
                pipe.incr(counter)
                pipe.expire(counter, 61)
                count, _ = await pipe.execute()
        except RedisError as exc:  # the answer is a 401 anyway; don't turn it into a 503
            log.warning("Could not count a failed authentication: %s", exc)
            return
        if count >= self.limit:
            if len(self._locked) >= _MAX_REMEMBERED:
                self._locked = {c: w for c, w in self._locked.items() if w == window}
            self._locked[client] = window
            if count == self.limit:
                log.warning("Client %s reached %d wrong API keys this minute", client, count)
        if count > self.limit:
            raise _refuse(self.limit, now)


def auth_failures(app: FastAPI) -> AuthFailures:
    guard = getattr(app.state, "auth_failures", None)
    if guard is None:
        settings = app.state.settings
        guard = AuthFailures(settings.auth_failures_per_minute, settings.queue_prefix)
        app.state.auth_failures = guard
    return guard
