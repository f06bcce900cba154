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
