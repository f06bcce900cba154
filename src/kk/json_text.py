"""JSON text of values that clients sent.

Python's parser (which FastAPI uses for bodies) accepts what JSON text may hold but
Unicode or BullMQ cannot: `NaN`/`Infinity`, which BullMQ's `json.dumps(allow_nan=False)`
refuses, and lone UTF-16 surrogates (`"\\ud800"`), which no UTF-8 encoder accepts, so
every later read of the value would fail. Refusing both here turns a client's mistake
into a 400 rather than a 500 on every read.
"""

from __future__ import annotations

import json
from typing import Any

from kk.errors import AppError, ErrorCode


def client_json(value: Any, what: str, *, ensure_ascii: bool = True) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=ensure_ascii)
    except ValueError:
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"The {what} holds NaN or Infinity, which JSON does not allow",
        ) from None
    # Escaped surrogates show as \ud8..\udf; pairs are fine, lone ones are not.
    if ensure_ascii and "\\ud" in text:
        unicode_text = json.dumps(value, ensure_ascii=False)
    else:
        unicode_text = text
    if not is_unicode(unicode_text):
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"The {what} holds a lone UTF-16 surrogate, which is not valid Unicode",
        )
    return text


def is_unicode(text: str) -> bool:
    """False when the text holds a lone surrogate (which no UTF-8 encoder accepts)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
