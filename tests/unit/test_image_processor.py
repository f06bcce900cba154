from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from PIL import Image
from pydantic import ValidationError

from kk.config import Settings
from kk.processors.base import JobContext
from kk.processors.image import ImageJobData, process_image
from tests.unit.helpers_http import Reply, local_server


def setup(tmp_path: Path, **overrides: Any) -> tuple[Settings, JobContext, Path]:
    settings = Settings(data_dir=tmp_path, **overrides)
    assert settings.storage_root is not None
    settings.storage_root.mkdir(parents=True)
    ctx = JobContext(settings=settings, redis=None, queues=None)  # type: ignore[arg-type]
    return settings, ctx, settings.storage_root


def job(data: dict[str, Any]) -> Any:
    return SimpleNamespace(id="1", name="resize", data=data, attemptsMade=0)


async def test_resize_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    _, ctx, root = setup(tmp_path)
    Image.new("RGB", (400, 200), "orange").save(root / "photo.png")
    result = await process_image(
        job({"source": "photo.png", "output": "thumbs/photo-100.png", "width": 100}), ctx
    )
    with Image.open(root / "thumbs" / "photo-100.png") as out:
        assert out.size == (100, 50) and out.format == "PNG"
    assert result == {
        "output": "thumbs/photo-100.png",
        "width": 100,
        "height": 50,
        "format": "png",
        "bytes": (root / "thumbs" / "photo-100.png").stat().st_size,
    }


async def test_resize_by_height_and_by_both_sides(tmp_path: Path) -> None:
    _, ctx, root = setup(tmp_path)
    Image.new("RGB", (400, 200), "orange").save(root / "photo.png")
    await process_image(job({"source": "photo.png", "output": "h.png", "height": 20}), ctx)
    await process_image(
        job({"source": "photo.png", "output": "wh.png", "width": 30, "height": 30}), ctx
    )
    with Image.open(root / "h.png") as by_height, Image.open(root / "wh.png") as exact:
        assert by_height.size == (40, 20)
        assert exact.size == (30, 30)


async def test_thumbnail_fits_the_box_without_enlarging(tmp_path: Path) -> None:
    _, ctx, root = setup(tmp_path)
    Image.new("RGB", (400, 200), "blue").save(root / "photo.png")
    result = await process_image(
        job({"source": "photo.png", "output": "t.webp", "operation": "thumbnail",
             "width": 64, "height": 64}),
        ctx,
    )  # fmt: skip
    assert (result["width"], result["height"], result["format"]) == (64, 32, "webp")
    big = await process_image(
        job({"source": "photo.png", "output": "t2.png", "operation": "thumbnail", "width": 900}),
        ctx,
    )
    assert (big["width"], big["height"]) == (400, 200)


async def test_convert_rgba_png_to_jpeg(tmp_path: Path) -> None:
    _, ctx, root = setup(tmp_path)
    Image.new("RGBA", (50, 40), (255, 0, 0, 128)).save(root / "alpha.png")
    result = await process_image(
        job({"source": "alpha.png", "output": "out/alpha.bin", "operation": "convert",
             "format": "jpeg", "quality": 70}),
        ctx,
    )  # fmt: skip
    assert result["format"] == "jpeg"
    with Image.open(root / "out" / "alpha.bin") as out:
        assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (50, 40))


async def test_format_follows_the_output_extension(tmp_path: Path) -> None:
    _, ctx, root = setup(tmp_path)
    Image.new("P", (20, 20)).save(root / "p.png")
    result = await process_image(
        job({"source": "p.png", "output": "p.gif", "operation": "convert"}), ctx
    )
    assert result["format"] == "gif"
    with Image.open(root / "p.gif") as out:
        assert out.format == "GIF"


@pytest.mark.parametrize(
    ("source", "output"),
    [("../x.png", "ok.png"), ("ok.png", "../x.png"), ("/etc/passwd", "ok.png"),
     ("link/x.png", "ok.png"), ("ok.png", "link/out.png")],
)  # fmt: skip
async def test_paths_outside_the_storage_root_are_refused(
    tmp_path: Path, source: str, output: str
) -> None:
    _, ctx, root = setup(tmp_path)
    Image.new("RGB", (10, 10)).save(root / "ok.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (10, 10)).save(outside / "x.png")
    (root / "link").symlink_to(outside)
    # `..` and absolute paths are refused as data (when added); symlinks when the job runs.
    with pytest.raises(UnrecoverableError, match=r"refused path|invalid job data"):
        await process_image(job({"source": source, "output": output, "width": 5}), ctx)
    assert sorted(p.name for p in outside.iterdir()) == ["x.png"]


async def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    _, ctx, root = setup(tmp_path, image_max_pixels=1000)
    Image.new("L", (2000, 2000)).save(root / "bomb.png")  # a few KB, 4 Mpx decoded
    assert (root / "bomb.png").stat().st_size < 50_000
    with pytest.raises(UnrecoverableError, match="pixel limit"):
        await process_image(job({"source": "bomb.png", "output": "o.png", "width": 10}), ctx)
    assert not (root / "o.png").exists()


async def test_between_one_and_two_times_the_limit_is_refused_too(tmp_path: Path) -> None:
    # Pillow itself only warns in this range.
    _, ctx, root = setup(tmp_path, image_max_pixels=1000)
    Image.new("L", (40, 40)).save(root / "img.png")
    with pytest.raises(UnrecoverableError, match="pixel limit"):
        await process_image(job({"source": "img.png", "output": "o.png", "width": 10}), ctx)


async def test_not_an_image_and_missing_source_fail_for_good(tmp_path: Path) -> None:
    _, ctx, root = setup(tmp_path)
    (root / "text.png").write_text("not an image")
    with pytest.raises(UnrecoverableError, match="not a readable image"):
        await process_image(job({"source": "text.png", "output": "o.png", "width": 10}), ctx)
    with pytest.raises(UnrecoverableError, match="does not exist"):
        await process_image(job({"source": "none.png", "output": "o.png", "width": 10}), ctx)


async def test_source_from_an_allowed_url(tmp_path: Path) -> None:
    _, ctx, _ = setup(tmp_path, ssrf_allow=["127.0.0.1"])
    buffer = io.BytesIO()
    Image.new("RGB", (300, 100), "green").save(buffer, format="PNG")
    with local_server() as server:
        server.replies["/img.png"] = [Reply(200, buffer.getvalue())]
        result = await process_image(
            job({"source": f"{server.url}/img.png", "output": "web.png", "width": 30}), ctx
        )
    assert (result["width"], result["height"]) == (30, 10)


async def test_source_url_to_a_private_address_is_refused(tmp_path: Path) -> None:
    _, ctx, _ = setup(tmp_path)
    with local_server() as server:
        with pytest.raises(UnrecoverableError, match="refused"):
            await process_image(
                job({"source": f"{server.url}/img.png", "output": "web.png", "width": 30}), ctx
            )
        assert server.requests == []


@pytest.mark.parametrize(
    "data",
    [{"source": "a.png", "output": "b.png"},
     {"source": "a.png", "output": "b.png", "operation": "thumbnail"},
     {"source": "ftp://x/a.png", "output": "b.png", "width": 1},
     {"source": "a.png", "output": "b.png", "width": 0},
     {"source": "a.png", "output": "b.png", "width": 10_001},
     {"source": "a.png", "output": "b.png", "width": 5, "format": "bmp"},
     {"source": "a.png", "output": "b.png", "width": 5, "quality": 0}],
)  # fmt: skip
def test_invalid_payloads(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ImageJobData.model_validate(data)


def test_convert_needs_no_size_and_traversal_is_refused_as_data() -> None:
    ImageJobData.model_validate({"source": "a.png", "output": "b.jpg", "operation": "convert"})
    # `..` needs no storage root to be refused: when the job is added.
    with pytest.raises(ValidationError, match=r"'\.\.' component"):
        ImageJobData.model_validate({"source": "../../etc/passwd", "output": "x.png", "width": 10})
