"""What a job did, written to its BullMQ log (`job.log`) and progress (`job.updateProgress`).

Both are best effort: once an email is sent or a webhook delivered, a failed log write must
not fail the job, or its retry would send it twice. Job-like objects without these methods
(a processor called directly) are simply not traced.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger("kk.worker")


async def note(job: Any, text: str) -> None:
    write = getattr(job, "log", None)
    if write is None:
        return
    try:
        await write(text)
    except (RedisError, OSError) as exc:
        log.warning("job %s: log line not written: %s", getattr(job, "id", "?"), exc)


async def progress(job: Any, value: int) -> None:
    update = getattr(job, "updateProgress", None)
    if update is None:
        return
    try:
        await update(value)
    except (RedisError, OSError) as exc:
        log.warning("job %s: progress not written: %s", getattr(job, "id", "?"), exc)
