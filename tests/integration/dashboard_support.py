"""A `kk serve` of its own for dashboard tests: own key prefix and queues, same Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any

FAIL_FIRST = "tests.support.dashboard_processors:fail_first"
SLEEPY = "tests.support.processors:sleepy"


def dashboard_env(
    base_env: dict[str, str],
    queues: dict[str, dict[str, Any]],
    schedules: dict[str, dict[str, Any]] | None = None,
    prefix: str | None = None,
    **extra: str,
) -> dict[str, str]:
    env = {
        **base_env,
        "KK_QUEUE_PREFIX": prefix or f"kkd-{uuid.uuid4().hex[:8]}",
        "KK_QUEUES": json.dumps(queues),
        **extra,
    }
    if schedules is not None:
        env["KK_SCHEDULES"] = json.dumps(schedules)
    return env
