from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError

from kk.config import Settings
from kk.processors.base import JobContext
from kk.processors.cleanup import process_cleanup


class FakeQueues:
    """Stand-in for QueueService: the queue names and a recording `clean`."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.calls: list[tuple[str, list[str], int, int | None]] = []

    async def clean(
        self, name: str, statuses: list[str], grace_ms: int, limit: int | None
    ) -> dict[str, int]:
        self.calls.append((name, list(statuses), grace_ms, limit))
        return {"completed": 2, "failed": 1}


def make(tmp_path: Path, **overrides: Any) -> tuple[JobContext, Path, FakeQueues]:
    settings = Settings(data_dir=tmp_path / "data", **overrides)
    assert settings.temp_dir is not None
    settings.temp_dir.mkdir(parents=True)
    queues = FakeQueues(["email", "webhook"])
    ctx = JobContext(settings=settings, redis=None, queues=queues)  # type: ignore[arg-type]
    return ctx, settings.temp_dir, queues


def job(data: dict[str, Any]) -> Any:
    return SimpleNamespace(id="1", name="cleanup-temp-files", data=data, attemptsMade=0)


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


async def test_old_files_go_new_files_stay(tmp_path: Path) -> None:
    ctx, temp, queues = make(tmp_path)
    (temp / "sub" / "deeper").mkdir(parents=True)
    old, new, deep = temp / "sub" / "old.bin", temp / "new.bin", temp / "sub" / "deeper" / "d"
    old.write_bytes(b"o" * 10)
    new.write_bytes(b"n" * 7)
    deep.write_bytes(b"d" * 5)
    for path in (old, deep, temp / "sub" / "deeper", temp / "sub"):
        age(path, 7200)

    result = await process_cleanup(job({"olderThanSeconds": 3600}), ctx)

    assert not old.exists() and not deep.exists()
    assert new.read_bytes() == b"n" * 7
    assert not (temp / "sub").exists(), "emptied old directories are removed"
    assert temp.is_dir(), "the temp dir itself stays"
    assert result == {
        "removedFiles": 2,
        "freedBytes": 15,
        "keptFiles": 1,
        "removedDirs": 2,
        "trimmedJobs": 6,
        "dryRun": False,
    }
    assert queues.calls == [
        ("email", ["completed", "failed"], 7 * 86_400 * 1000, None),
        ("webhook", ["completed", "failed"], 7 * 86_400 * 1000, None),
    ]


async def test_only_old_empty_directories_go(tmp_path: Path) -> None:
    # A fresh one may be where a running job is about to write.
    ctx, temp, _ = make(tmp_path)
    (temp / "fresh").mkdir()
    (temp / "stale").mkdir()
    age(temp / "stale", 7200)
    result = await process_cleanup(job({"olderThanSeconds": 3600, "trimFinishedJobs": False}), ctx)
    assert (temp / "fresh").is_dir() and not (temp / "stale").exists()
    assert result["removedDirs"] == 1


async def test_symlinks_are_removed_but_never_followed(tmp_path: Path) -> None:
    ctx, temp, _ = make(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.txt"
    target.write_text("keep me")
    age(target, 7200)
    (temp / "file-link").symlink_to(target)
    (temp / "dir-link").symlink_to(outside, target_is_directory=True)
    age(temp / "file-link", 7200)
    age(temp / "dir-link", 7200)

    result = await process_cleanup(job({"olderThanSeconds": 3600, "trimFinishedJobs": False}), ctx)

    assert not (temp / "file-link").is_symlink() and not (temp / "dir-link").is_symlink()
    assert target.read_text() == "keep me"
    assert result["removedFiles"] == 2


async def test_dry_run_removes_nothing(tmp_path: Path) -> None:
    ctx, temp, queues = make(tmp_path)
    old = temp / "old.bin"
    old.write_bytes(b"x" * 3)
    age(old, 7200)
    result = await process_cleanup(job({"olderThanSeconds": 3600, "dryRun": True}), ctx)
    assert old.exists()
    assert queues.calls == []
    assert result["removedFiles"] == 1 and result["freedBytes"] == 3
    assert result["trimmedJobs"] == 0 and result["dryRun"] is True


async def test_defaults_come_from_settings(tmp_path: Path) -> None:
    ctx, temp, queues = make(tmp_path, cleanup_max_age_s=100, cleanup_finished_age_s=60)
    old, new = temp / "old", temp / "new"
    old.write_bytes(b"")
    new.write_bytes(b"")
    age(old, 200)
    age(new, 50)
    result = await process_cleanup(job({}), ctx)
    assert (not old.exists(), new.exists()) == (True, True)
    assert result["removedFiles"] == 1
    assert {call[2] for call in queues.calls} == {60_000}


async def test_trim_only(tmp_path: Path) -> None:
    ctx, temp, queues = make(tmp_path)
    old = temp / "old"
    old.write_bytes(b"")
    age(old, 7200)
    data = {"cleanTempFiles": False, "olderThanSeconds": 0, "finishedOlderThanSeconds": 3600}
    result = await process_cleanup(job(data), ctx)
    assert old.exists() and result["removedFiles"] == 0
    assert result["trimmedJobs"] == 6 and {c[2] for c in queues.calls} == {3_600_000}


async def test_missing_temp_dir_is_not_an_error(tmp_path: Path) -> None:
    ctx, temp, _ = make(tmp_path)
    temp.rmdir()
    result = await process_cleanup(job({"trimFinishedJobs": False}), ctx)
    assert result["removedFiles"] == 0


async def test_invalid_data_fails_for_good(tmp_path: Path) -> None:
    ctx, _, _ = make(tmp_path)
    with pytest.raises(UnrecoverableError, match="olderThanSeconds"):
        await process_cleanup(job({"olderThanSeconds": -1}), ctx)
