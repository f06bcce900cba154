"""What the built-in processors need: mail, files, outbound HTTP, image limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from kk.config.lists import TextList


def _under_data_dir(name: str) -> Any:
    # Defaults derive from the (already validated) data dir; a value given is kept as is.
    return Field(default_factory=lambda data: data["data_dir"] / name)


class ProcessorSettings(BaseModel):
    smtp_url: str | None = None
    mail_from: str = "KK Backend <no-reply@localhost>"
    storage_root: Path = _under_data_dir("storage")
    temp_dir: Path = _under_data_dir("tmp")
    cleanup_max_age_s: int = Field(86_400, ge=0)
    cleanup_finished_age_s: int = Field(7 * 86_400, ge=0)
    webhook_secret: str | None = None
    webhook_timeout_s: float = Field(10.0, gt=0, le=120)
    http_max_response_bytes: int = Field(20 * 1_048_576, ge=1024)
    image_max_pixels: int = Field(40_000_000, ge=1)
    # Pixels an image job may produce: an upscale of a tiny file to 10000x10000 would
    # otherwise allocate gigabytes (RGBA, plus the resampling buffer).
    image_max_output_pixels: int = Field(25_000_000, ge=1)
    # Hosts or CIDR ranges that workers may fetch although they are private (e.g. in tests).
    ssrf_allow: TextList = Field(default_factory=list)
