"""The `image-processing` queue: resize, thumbnail or convert an image with Pillow.

Sources are files under `storage_root` or http(s) URLs (SSRF-guarded); outputs always go
under `storage_root`. Decoding is bounded by `image_max_pixels` so a small file that
expands to a huge bitmap (decompression bomb) is refused before it is decoded, and the
result by `image_max_output_pixels` so a tiny file cannot be upscaled into gigabytes. Both
are checked from the header (`im.size`) before any pixel is allocated, and only the
decoders of the accepted formats are used.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kk.files import PathEscapeError, check_relative, resolve_inside, write_atomic
from kk.processors.base import JobContext, ProcessorSpec, validate_job_data
from kk.processors.job_log import note, progress
from kk.processors.net_guard import (
    BlockedURLError,
    ResponseTooLargeError,
    TooManyRedirectsError,
)

if TYPE_CHECKING:
    from bullmq import Job

Format = Literal["png", "jpeg", "webp", "gif"]
_EXTENSIONS: dict[str, Format] = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".gif": "gif",
}  # fmt: skip
FETCH_TIMEOUT_S = 30.0
# Decoders Pillow may use: the formats the queue writes. Others (PSD, TIFF, EPS, ...) have
# had more parser bugs and are no business of this queue.
DECODERS = ("JPEG", "PNG", "WEBP", "GIF")
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees


class ImageJobData(BaseModel):
    model_config = ConfigDict(
        extra="forbid",  # a misspelt option must not be silently ignored
        json_schema_extra={
            "examples": [
                {"source": "uploads/photo.jpg", "output": "thumbs/photo.webp",
                 "operation": "thumbnail", "width": 320, "height": 320, "format": "webp"}
            ]
        },
    )  # fmt: skip
    # Paths are checked as text here (no `..`, not absolute, no control characters), and
    # against storage_root and its symlinks when the job runs (the model has no settings).
    source: str = Field(min_length=1, max_length=2048)
    output: str = Field(min_length=1, max_length=1024)
    operation: Literal["resize", "thumbnail", "convert"] = "resize"
    width: int | None = Field(None, ge=1, le=10_000)
    height: int | None = Field(None, ge=1, le=10_000)
    format: Format | None = None
    quality: int = Field(85, ge=1, le=100)

    @field_validator("source")
    @classmethod
    def _url_or_path(cls, value: str) -> str:
        if value.lower().startswith(("http://", "https://")):
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise ValueError("source URL contains a control character")
            return value
        if "://" in value:
            raise ValueError("source must be an http(s) URL or a path under the storage root")
        check_relative(value)
        return value

    @field_validator("output")
    @classmethod
    def _output_path(cls, value: str) -> str:
        check_relative(value)
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


async def _read_url(url: str, ctx: JobContext) -> bytes:
    try:
        result = await ctx.http.fetch(
            url,
            timeout_s=FETCH_TIMEOUT_S,
            max_bytes=ctx.settings.http_max_response_bytes,
        )
    except BlockedURLError as exc:
        raise UnrecoverableError(f"refused: {exc}") from None
    except (ResponseTooLargeError, TooManyRedirectsError) as exc:
        raise UnrecoverableError(str(exc)) from None
    except (OSError, TimeoutError) as exc:  # FetchError is an OSError
        why = str(exc) or ("no answer in time" if isinstance(exc, TimeoutError) else repr(exc))
        raise RuntimeError(f"fetching the source failed: {why}") from exc
    if result.status >= 500 or result.status in (408, 425, 429):
        raise RuntimeError(f"source server answered {result.status}")
    if result.status != 200:
        raise UnrecoverableError(f"source server answered {result.status}")
    return result.body


def _target_size(image: Image.Image, job: ImageJobData) -> tuple[int, int]:
    return _target_for(image.size, job)


def _target_for(source: tuple[int, int], job: ImageJobData) -> tuple[int, int]:
    width, height = source
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


def _output_size(source: tuple[int, int], orientation: int, job: ImageJobData) -> tuple[int, int]:
    """The size the job will produce, known from the header alone."""
    width, height = source
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    if job.operation == "resize":
        return _target_for((width, height), job)
    if job.operation == "thumbnail":  # fits the box, never enlarges
        scale = min(1.0, (job.width or width) / width, (job.height or height) / height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


def _check_sizes(
    opened: Image.Image, job: ImageJobData, max_pixels: int, max_output_pixels: int
) -> None:
    """Refuse before decoding: a header is enough to know both sizes."""
    width, height = opened.size
    if width * height > max_pixels:
        raise UnrecoverableError(
            f"image of {width}x{height} exceeds the {max_pixels}-pixel limit for decoding "
            "(possible decompression bomb)"
        )
    out_w, out_h = _output_size(opened.size, opened.getexif().get(0x0112, 1), job)
    if out_w * out_h > max_output_pixels:
        raise UnrecoverableError(
            f"output of {out_w}x{out_h} ({out_w * out_h} pixels) exceeds the "
            f"{max_output_pixels}-pixel output limit (KK_IMAGE_MAX_OUTPUT_PIXELS)"
        )


def _transform(
    data: bytes, job: ImageJobData, max_pixels: int, max_output_pixels: int | None = None
) -> tuple[bytes, int, int, Format]:
    """Decode, transform and encode; runs in a worker thread."""
    max_output = max_pixels if max_output_pixels is None else max_output_pixels
    try:
        # No process-wide state is changed (Image.MAX_IMAGE_PIXELS, warning filters): the
        # sizes are checked here, per job, before `exif_transpose` decodes the pixels.
        # Pillow's own bomb check (2x its default limit) can still fire in `open`.
        with Image.open(io.BytesIO(data), formats=DECODERS) as opened:
            _check_sizes(opened, job, max_pixels, max_output)
            source_format = opened.format
            image = ImageOps.exif_transpose(opened)
    except Image.DecompressionBombError as exc:
        raise UnrecoverableError(
            f"image exceeds the {max_pixels}-pixel limit (possible decompression bomb): {exc}"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UnrecoverableError(f"source is not a readable image: {exc}") from None

    if job.operation == "resize":
        image = image.resize(_target_size(image, job), Image.Resampling.LANCZOS)
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


def _describe(raw: bytes) -> str:
    """Size and format from the header alone (no pixels decoded), for the job's log."""
    try:
        with Image.open(io.BytesIO(raw), formats=DECODERS) as opened:
            return f"{opened.size[0]}x{opened.size[1]} {opened.format} ({len(raw)} bytes)"
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError):
        return f"{len(raw)} bytes, not a readable image"


async def process_image(job: Job, ctx: JobContext) -> dict[str, Any]:
    data = validate_job_data(ImageJobData, job.data)
    settings = ctx.settings
    root = settings.storage_root
    output = _inside(root, data.output)
    if data.source.lower().startswith(("http://", "https://")):
        raw = await _read_url(data.source, ctx)
    else:
        source = _inside(root, data.source)
        raw = await asyncio.to_thread(_read_file, source, settings.http_max_response_bytes)
    await note(job, f"image opened: {await asyncio.to_thread(_describe, raw)}")
    encoded, width, height, fmt = await asyncio.to_thread(
        _transform, raw, data, settings.image_max_pixels, settings.image_max_output_pixels
    )
    await asyncio.to_thread(write_atomic, output, encoded)
    shown = output.relative_to(root.resolve()).as_posix()
    # One output per job: 1 of 1 written.
    await note(job, f"output 1/1 written: {shown} {width}x{height} {fmt} ({len(encoded)} bytes)")
    await progress(job, 100)
    return {
        "output": shown,
        "width": width,
        "height": height,
        "format": fmt,
        "bytes": len(encoded),
    }


SPEC = ProcessorSpec(process=process_image, payload=ImageJobData, default_job_name="resize")
