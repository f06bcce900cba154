"""File paths taken from job data, kept inside a root directory, atomic writes, and paths
as clients may see them (relative, never the server's absolute layout)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import site
import sys
import sysconfig
import tempfile
from pathlib import Path, PurePosixPath

import kk

# An absolute path in a Python traceback line: `File "/srv/app/x.py", line 3, in f`.
_TRACEBACK_FILE = re.compile(r'File "(/[^"]*)"')


class PathEscapeError(ValueError):
    """A path from job data is malformed or points outside its root."""


def check_relative(relative: str) -> PurePosixPath:
    """The lexical checks of a path from job data, which need no file system: they run
    when the job is added, so a bad path is a 400 then, not a failed job later."""
    if not relative or not relative.strip():
        raise PathEscapeError("path is empty")
    if "\x00" in relative:
        raise PathEscapeError("path contains a NUL byte")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in relative):
        raise PathEscapeError("path contains a control character (a newline, an escape, ...)")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or relative.startswith("\\"):
        raise PathEscapeError(f"path '{relative}' is absolute; give it relative to the root")
    if ".." in pure.parts:
        raise PathEscapeError(f"path '{relative}' contains a '..' component")
    return pure


def resolve_inside(root: Path, relative: str) -> Path:
    """The absolute, symlink-free path of `relative` under `root`; the target need not exist.

    Lexical checks come first (clear reasons for the common mistakes), then the resolved
    path, with symlinks followed, must still lie under the resolved root: a symlink inside
    the root that points elsewhere is an escape too.
    """
    pure = check_relative(relative)
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


def shown_path(path: Path, root: Path) -> str:
    """`path` relative to `root` for clients ("outbox/x.eml"); its name alone if it lies
    elsewhere. The server's absolute layout is nobody's business."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


@functools.cache
def _code_roots() -> tuple[str, ...]:
    """Directories code runs from: the source tree, site-packages, the standard library,
    the interpreter's prefixes and the working directory (never "/" itself)."""
    candidates = [Path(kk.__file__).resolve().parent.parent, Path.cwd()]
    candidates += [Path(p) for p in site.getsitepackages()]
    candidates += [Path(site.getusersitepackages())]
    candidates += [Path(p) for p in sysconfig.get_paths().values()]
    candidates += [Path(sys.prefix), Path(sys.exec_prefix), Path(sys.base_prefix)]
    roots = {str(c.resolve()) for c in candidates} | {str(c) for c in candidates}
    return tuple(r for r in roots if r != "/")


def strip_server_paths(lines: list[str], data_dir: Path | None = None) -> list[str]:
    """Stack trace lines without the server's absolute paths: known roots (data dir, source,
    site-packages, standard library) are cut off, the longest first; any other file path in
    a traceback keeps only its last two parts."""
    roots = list(_code_roots())
    if data_dir is not None:
        roots += [str(data_dir.resolve()), str(data_dir.absolute())]
    ordered = sorted({r.rstrip("/") for r in roots if r.rstrip("/")}, key=len, reverse=True)

    def strip(line: str) -> str:
        for root in ordered:
            line = line.replace(root + "/", "")
        return _TRACEBACK_FILE.sub(
            lambda m: 'File ".../' + "/".join(m.group(1).split("/")[-2:]) + '"', line
        )

    return [strip(line) if isinstance(line, str) else line for line in lines]
