"""The `image-processing` queue: resize, thumbnail or convert an image with Pillow.

Sources are files under `storage_root` or http(s) URLs (SSRF-guarded); outputs always go
under `storage_root`. Decoding is bounded by `image_max_pixels` so a small file that
expands to a huge bitmap (decompression bomb) is refused before it is decoded.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import httpx
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, Field, field_validator, model_validator

from kk.processors.base import JobContext, ProcessorSpec, validate_job_data
from kk.processors.net_guard import (
    BlockedURLError,
    ResponseTooLargeError,
    TooManyRedirectsError,
    fetch_bytes,
)
from kk.processors.paths import PathEscapeError, resolve_inside, write_atomic

if TYPE_CHECKING:
    from bullmq import Job

    from kk.settings import Settings

Format = Literal["png", "jpeg", "webp", "gif"]
_EXTENSIONS: dict[str, Format] = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".gif": "gif",
}  # fmt: skip
FETCH_TIMEOUT_S = 30.0


class ImageJobData(BaseModel):
    # Paths are checked against storage_root when the job runs, not here: the model has no
    # settings, and a refused path fails the job for good anyway.
    source: str = Field(min_length=1, max_length=2048)
    output: str = Field(min_length=1, max_length=1024)
    operation: Literal["resize", "thumbnail", "convert"] = "resize"
    width: int | None = Field(None, ge=1, le=10_000)
    height: int | None = Field(None, ge=1, le=10_000)
    format: Format | None = None
    quality: int = Field(85, ge=1, le=100)

    @field_validator("source")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        if "://" in value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("source must be an http(s) URL or a path under the storage root")
        return value

    @model_validator(mode="after")
    def _size_given(self) -> ImageJobData:
        if self.operation != "convert" and self.width is None and self.height is None:
            raise ValueError(f"'{self.operation}' needs width or height")
        return self


def _inside(root: Path, relative: str) -> Path:
    try:
        return resolve_inside(root, relative)
    except PathEscapeError as exc:
        raise UnrecoverableError(f"refused path: {exc}") from None


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except (FileNotFoundError, IsADirectoryError):
        raise UnrecoverableError(f"source file '{path.name}' does not exist") from None
    if len(data) > max_bytes:
        raise UnrecoverableError(f"source file is larger than {max_bytes} bytes")
    return data


async def _read_url(url: str, settings: Settings) -> bytes:
    try:
        result = await fetch_bytes(
            url,
            allow=settings.ssrf_allow,
            timeout_s=FETCH_TIMEOUT_S,
            max_bytes=settings.http_max_response_bytes,
        )
    except BlockedURLError as exc:
        raise UnrecoverableError(f"refused: {exc}") from None
    except (ResponseTooLargeError, TooManyRedirectsError) as exc:
        raise UnrecoverableError(str(exc)) from None
    except (httpx.HTTPError, OSError, TimeoutError) as exc:
        raise RuntimeError(f"fetching the source failed: {exc!r}") from exc
    if result.status >= 500 or result.status in (408, 425, 429):
        raise RuntimeError(f"source server answered {result.status}")
    if result.status != 200:
        raise UnrecoverableError(f"source server answered {result.status}")
    return result.body


def _target_size(image: Image.Image, job: ImageJobData) -> tuple[int, int]:
    width, height = image.size
    if job.width and job.height:
        return job.width, job.height
    if job.width:
        return job.width, max(1, round(height * job.width / width))
    assert job.height is not None
    return max(1, round(width * job.height / height)), job.height


def _output_format(job: ImageJobData, source_format: str | None) -> Format:
    if job.format:
        return job.format
    by_extension = _EXTENSIONS.get(PurePosixPath(job.output).suffix.lower())
    if by_extension:
        return by_extension
    if source_format and source_format.lower() in _EXTENSIONS.values():
        return source_format.lower()  # type: ignore[return-value]
    raise UnrecoverableError("cannot tell the output format; give 'format' or an extension")


def _fit_mode(image: Image.Image, fmt: Format) -> Image.Image:
    if fmt == "jpeg" and image.mode not in ("RGB", "L", "CMYK"):
        # JPEG has no alpha: flatten on white rather than exposing hidden pixel colours.
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if fmt != "jpeg" and image.mode == "CMYK":
        return image.convert("RGB")
    return image


def _transform(data: bytes, job: ImageJobData, max_pixels: int) -> tuple[bytes, int, int, Format]:
    """Decode, transform and encode; runs in a worker thread."""
    # Pillow's limit is process-wide; every job of this process uses the same setting.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the limit; a bomb must fail either way.
            # The filter state is process-wide, so threads may overlap here; the explicit
            # size check below is what holds regardless.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.width * opened.height > max_pixels:
                    raise Image.DecompressionBombError("image has too many pixels")
                source_format = opened.format
                image = ImageOps.exif_transpose(opened)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnrecoverableError(
            f"image exceeds the {max_pixels}-pixel limit (possible decompression bomb): {exc}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UnrecoverableError(f"source is not a readable image: {exc}") from None

    if job.operation == "resize":
        size = _target_size(image, job)
        if size[0] * size[1] > max_pixels:
            raise UnrecoverableError(f"output {size[0]}x{size[1]} exceeds the pixel limit")
        image = image.resize(size, Image.Resampling.LANCZOS)
    elif job.operation == "thumbnail":
        # Keeps the aspect ratio inside the box and never enlarges.
        image.thumbnail((job.width or 10_000, job.height or 10_000), Image.Resampling.LANCZOS)

    fmt = _output_format(job, source_format)
    image = _fit_mode(image, fmt)
    options: dict[str, Any] = {"quality": job.quality} if fmt in ("jpeg", "webp") else {}
    out = io.BytesIO()
    try:
        image.save(out, format=fmt.upper(), **options)
    except (OSError, ValueError) as exc:
        raise UnrecoverableError(f"cannot write {fmt}: {exc}") from None
    return out.getvalue(), image.width, image.height, fmt


async def process_image(job: Job, ctx: JobContext) -> dict[str, Any]:
    data = validate_job_data(ImageJobData, job.data)
    settings = ctx.settings
    assert settings.storage_root is not None
    root = settings.storage_root
    output = _inside(root, data.output)
    if data.source.lower().startswith(("http://", "https://")):
        raw = await _read_url(data.source, settings)
    else:
        source = _inside(root, data.source)
        raw = await asyncio.to_thread(_read_file, source, settings.http_max_response_bytes)
    encoded, width, height, fmt = await asyncio.to_thread(
        _transform, raw, data, settings.image_max_pixels
    )
    await asyncio.to_thread(write_atomic, output, encoded)
    return {
        "output": output.relative_to(root.resolve()).as_posix(),
        "width": width,
        "height": height,
        "format": fmt,
        "bytes": len(encoded),
    }


SPEC = ProcessorSpec(process=process_image, payload=ImageJobData, default_job_name="resize")
