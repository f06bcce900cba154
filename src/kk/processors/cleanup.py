"""The `cleanup` queue: delete old temporary files and trim finished jobs.

The walk works on directory file descriptors (`dir_fd`, `O_NOFOLLOW`), like shutil.rmtree:
if someone swaps a sub-directory for a symlink mid-walk, nothing outside `temp_dir` is
touched. Symlinks are removed as links, their targets never followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from kk.processors.base import JobContext, ProcessorSpec, validate_job_data
from kk.processors.job_log import note, progress

if TYPE_CHECKING:
    from bullmq import Job

# Deeper trees are left alone; each level holds one open descriptor.
MAX_DEPTH = 64
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class CleanupJobData(BaseModel):
    # Unknown fields are refused: a typo such as `dryrun` must not run a real cleanup.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"olderThanSeconds": 86400, "dryRun": True}]},
    )
    # Age of temp files to remove; default settings.cleanup_max_age_s.
    olderThanSeconds: int | None = Field(None, ge=0)
    # False: only trim finished jobs (e.g. an hourly trim schedule).
    cleanTempFiles: bool = True
    trimFinishedJobs: bool = True
    # Age of completed/failed jobs to remove; default settings.cleanup_finished_age_s.
    finishedOlderThanSeconds: int | None = Field(None, ge=0)
    dryRun: bool = False


@dataclass
class Sweep:
    """One pass over the temp dir: what it removed (or would remove, on a dry run)."""

    cutoff: float
    dry_run: bool
    removed: int = 0
    freed: int = 0
    kept: int = 0
    dirs: int = 0

    def directory(self, dir_fd: int, depth: int) -> bool:
        """Clean one directory; True if it is empty afterwards."""
        empty = True
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    gone = depth < MAX_DEPTH and self.subdirectory(dir_fd, entry.name, info, depth)
                elif stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                    gone = self.file(dir_fd, entry.name, info)
                else:
                    gone = False  # sockets, fifos, devices: not ours to judge
                empty = empty and gone
        return empty

    def file(self, dir_fd: int, name: str, info: os.stat_result) -> bool:
        if info.st_mtime >= self.cutoff:
            self.kept += 1
            return False
        self.removed += 1
        self.freed += info.st_size
        if self.dry_run:
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)  # a symlink itself, never its target
        return True

    def subdirectory(self, parent_fd: int, name: str, info: os.stat_result, depth: int) -> bool:
        """Clean a sub-directory and remove it if that left it empty; True if removed. Only
        a directory that was old before the sweep goes, so a fresh one a job just made stays."""
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError:
            return False  # vanished, or replaced by a symlink since the scan
        try:
            empty = self.directory(fd, depth + 1)
        finally:
            os.close(fd)
        if not empty or info.st_mtime >= self.cutoff or self.dry_run:
            return False
        try:
            os.rmdir(name, dir_fd=parent_fd)
        except OSError:
            return False  # a file appeared meanwhile
        self.dirs += 1
        return True


def sweep_temp_dir(temp_dir: Path, older_than_s: int, dry_run: bool) -> Sweep:
    sweep = Sweep(cutoff=time.time() - older_than_s, dry_run=dry_run)
    try:
        fd = os.open(temp_dir, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return sweep
    try:
        sweep.directory(fd, depth=0)
    finally:
        os.close(fd)
    return sweep


async def process_cleanup(job: Job, ctx: JobContext) -> dict[str, Any]:
    data = validate_job_data(CleanupJobData, job.data)
    settings = ctx.settings
    older_than = (
        settings.cleanup_max_age_s if data.olderThanSeconds is None else data.olderThanSeconds
    )
    trim = data.trimFinishedJobs and not data.dryRun
    # Progress counts batches: the temp-dir sweep, then one trim per queue.
    names = list(ctx.queues.names) if trim else []
    total, done = int(data.cleanTempFiles) + len(names), 0
    sweep = Sweep(cutoff=0, dry_run=data.dryRun)
    if data.cleanTempFiles:
        sweep = await asyncio.to_thread(sweep_temp_dir, settings.temp_dir, older_than, data.dryRun)
        verb = "would remove" if data.dryRun else "removed"
        await note(
            job,
            f"temp files older than {older_than}s: scanned {sweep.removed + sweep.kept}, "
            f"{verb} {sweep.removed} ({sweep.freed} bytes), kept {sweep.kept}, "
            f"removed {sweep.dirs} empty dirs",
        )
        done += 1
        await progress(job, done * 100 // total)

    trimmed = 0
    if trim:
        finished_age = (
            settings.cleanup_finished_age_s
            if data.finishedOlderThanSeconds is None
            else data.finishedOlderThanSeconds
        )
        for name in names:
            removed = await ctx.queues.clean(
                name, ["completed", "failed"], grace_ms=finished_age * 1000, limit=None
            )
            count = sum(removed.values())
            trimmed += count
            await note(job, f"queue '{name}': trimmed {count} finished jobs")
            done += 1
            await progress(job, done * 100 // total)
    if not total:
        await note(job, "nothing to do: no temp-file sweep and no job trim asked for")
    return {
        "removedFiles": sweep.removed,
        "freedBytes": sweep.freed,
        "keptFiles": sweep.kept,
        "removedDirs": sweep.dirs,
        "trimmedJobs": trimmed,
        "dryRun": data.dryRun,
    }


SPEC = ProcessorSpec(
    process=process_cleanup, payload=CleanupJobData, default_job_name="cleanup-temp-files"
)
