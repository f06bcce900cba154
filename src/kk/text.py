"""Text that is safe to write into a log line."""

from __future__ import annotations

import re

# Control characters (a decoded `%0A` in a path would start a forged log line), and the
# Unicode line separators some log viewers also break on.
_UNPRINTABLE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` with control characters written as escapes (`\\x0a`), for a log line."""
    if _UNPRINTABLE_RE.search(text) is None:
        return text
    return _UNPRINTABLE_RE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def counted(count: int, noun: str) -> str:
    """`1 job`, `2 jobs`: an English count with its noun."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
