"""Sizes and durations written as the contract writes them ("2.50MB", "5ms")."""

from __future__ import annotations

MB = 1024 * 1024


def format_mb(size_bytes: int | float) -> str:
    """A measured size, two decimals: 2_621_440 bytes -> "2.50MB"."""
    return f"{size_bytes / MB:.2f}MB"


def format_threshold_mb(megabytes: float) -> str:
    """A configured limit, as written: 1024 -> "1024MB", 512.5 -> "512.5MB"."""
    if float(megabytes).is_integer():
        return f"{int(megabytes)}MB"
    return f"{megabytes:.2f}".rstrip("0") + "MB"


def format_ms(milliseconds: float) -> str:
    """A duration in whole milliseconds: 4.6 -> "5ms"; never negative."""
    return f"{max(0, round(milliseconds))}ms"
