"""JSON text of values that clients sent.

Python's parser (which FastAPI uses for bodies) accepts what JSON text may hold but
Unicode or BullMQ cannot: `NaN`/`Infinity`, which BullMQ's `json.dumps(allow_nan=False)`
refuses, and lone UTF-16 surrogates (`"\\ud800"`), which no UTF-8 encoder accepts, so
every later read of the value would fail. Refusing both here turns a client's mistake
into a 400 rather than a 500 on every read. Excessive nesting is refused for the same
reason: pydantic cannot serialize a value nested a few hundred levels deep.
"""

from __future__ import annotations

import json
from typing import Any

from kk.errors import AppError, ErrorCode


def client_json(value: Any, what: str, *, ensure_ascii: bool = True) -> str:
    check_depth(value, what)
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


# Deeper values are refused: pydantic's serializer gives up near 255 levels (every answer
# holding the value would be a 500) and no real payload needs more than a few levels.
MAX_JSON_DEPTH = 64


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Levels of nested objects/arrays in `value` (a scalar is 0), counted without
    recursion; stops counting once past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why `value` is refused for its nesting, or None when it is fine."""
    if json_depth(value, limit) > limit:
        return f"nested more than {limit} levels deep"
    return None


def check_depth(value: Any, what: str) -> None:
    reason = too_deep(value)
    if reason:
        raise AppError(ErrorCode.VALIDATION_ERROR, f"The {what} is {reason}")


def shallow(value: Any) -> Any:
    """A pydantic before-validator: refuse excessive nesting where the body is parsed, so
    the error names the field."""
    reason = too_deep(value)
    if reason:
        raise ValueError(reason)
    return value
