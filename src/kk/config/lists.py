"""Lists in the environment: a JSON list, or plain comma-separated text.

`KK_READ_API_KEYS=<key>` is what a person types first; pydantic-settings would only take
`["<key>"]` and stop the service with a traceback otherwise.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_settings import NoDecode


def text_list(value: Any) -> Any:
    """`'["a", "b"]'` and `"a, b"` both give `["a", "b"]`; other values pass unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a valid JSON list ({exc.msg}): give `[...]` or a,b") from None
    return [item.strip() for item in text.split(",") if item.strip()]


# A list of strings read from one variable, as JSON or comma-separated.
TextList = Annotated[list[str], NoDecode, BeforeValidator(text_list)]
