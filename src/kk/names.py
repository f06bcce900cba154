"""Queue-name rules shared by settings, the HTTP layer and the workers."""

import re

from kk.errors import AppError, ErrorCode

QUEUE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def validate_queue_name(name: str) -> str:
    if not QUEUE_NAME_RE.fullmatch(name):
        raise AppError(
            ErrorCode.INVALID_QUEUE_NAME,
            "Queue names are 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter "
            "or digit",
        )
    return name


# BullMQ keeps a queue's own structures next to its job hashes (`<prefix>:<queue>:<jobId>`),
# so a job id equal to one of these names would address the queue's internals
# (bullmq's QueueKeys, plus the metrics and deduplication key stems).
RESERVED_JOB_IDS = frozenset(
    {
        "", "active", "wait", "waiting-children", "paused", "completed", "failed", "delayed",
        "repeat", "stalled", "limiter", "prioritized", "id", "stalled-check", "meta", "pc",
        "events", "marker", "de", "dn", "metrics",
    }
)  # fmt: skip


def is_reserved_job_id(job_id: str) -> bool:
    return job_id in RESERVED_JOB_IDS
