from __future__ import annotations

from pathlib import Path

import pytest

from kk.files import PathEscapeError, create_exclusive, resolve_inside, write_atomic


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    "relative",
    ["", "   ", "../x.png", "a/../../x", "a/..", "/etc/passwd", "\\\\server\\share", "a\x00b",
     ".", "./"],
)  # fmt: skip
def test_malformed_or_escaping_paths_are_refused(root: Path, relative: str) -> None:
    with pytest.raises(PathEscapeError):
        resolve_inside(root, relative)


def test_symlink_to_outside_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    (root / "link").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "secret.txt")
    (root / "dangling").symlink_to(outside / "not-yet")
    for relative in ("link/secret.txt", "link/new/out.png", "file-link", "dangling"):
        with pytest.raises(PathEscapeError, match="outside"):
            resolve_inside(root, relative)


def test_symlink_inside_the_root_is_fine(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    assert resolve_inside(root, "alias/a.png") == (root / "real" / "a.png").resolve()


def test_new_nested_output_path_is_allowed(root: Path) -> None:
    path = resolve_inside(root, "thumbs/2024/./photo.png")
    assert path == root.resolve() / "thumbs" / "2024" / "photo.png"
    assert not path.parent.exists()


def test_write_atomic_creates_parents_and_leaves_no_temp_files(root: Path) -> None:
    target = root / "a" / "b" / "out.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_create_exclusive_never_overwrites(root: Path) -> None:
    target = root / "secret"
    assert create_exclusive(target, b"first", mode=0o600)
    assert not create_exclusive(target, b"second", mode=0o600)
    assert target.read_bytes() == b"first"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in root.iterdir()] == ["secret"]
