"""JSON text of values that clients sent.

Python's parser (which FastAPI uses for bodies) accepts `NaN`, `Infinity` and `-Infinity`;
JSON does not, and BullMQ's `json.dumps(..., allow_nan=False)` would fail on them later.
Refusing them here turns a client's mistake into a 400 instead of a 500 or a silent null.
"""

from __future__ import annotations

import json
from typing import Any

from kk.errors import AppError, ErrorCode


def client_json(value: Any, what: str, *, ensure_ascii: bool = True) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=ensure_ascii)
    except ValueError:
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"The {what} holds NaN or Infinity, which JSON does not allow",
        ) from None
