"""File paths taken from job data, kept inside a root directory, and atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path, PurePosixPath


class PathEscapeError(ValueError):
    """A path from job data is malformed or points outside its root."""


def resolve_inside(root: Path, relative: str) -> Path:
    """The absolute, symlink-free path of `relative` under `root`; the target need not exist.

    Lexical checks come first (clear reasons for the common mistakes), then the resolved
    path, with symlinks followed, must still lie under the resolved root: a symlink inside
    the root that points elsewhere is an escape too.
    """
    if not relative or not relative.strip():
        raise PathEscapeError("path is empty")
    if "\x00" in relative:
        raise PathEscapeError("path contains a NUL byte")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("\\"):
        raise PathEscapeError(f"path '{relative}' is absolute; give it relative to the root")
    if ".." in pure.parts:
        raise PathEscapeError(f"path '{relative}' contains a '..' component")
    base = root.resolve()
    # Non-strict resolve follows the symlinks that exist and keeps the missing tail as is.
    resolved = (base / pure).resolve()
    if resolved == base:
        raise PathEscapeError(f"path '{relative}' names the root directory itself")
    if not resolved.is_relative_to(base):
        raise PathEscapeError(f"path '{relative}' leads outside the root (through a symlink)")
    return resolved


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `path` so readers see the old file or the whole new one, never a partial one.
    The temporary file sits in the same directory, as os.replace must not cross devices."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def create_exclusive(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Create `path` with `data` unless it exists; True if this call created it.

    The content is complete before the name appears (hard link of a finished temporary
    file), so a concurrent reader never sees a half-written file and two creators never
    overwrite each other.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
