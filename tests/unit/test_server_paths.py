"""Paths shown to API readers: relative to the data dir, no server layout in stack traces."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import httpx

from kk.files import shown_path, strip_server_paths


def test_a_path_inside_the_root_is_shown_relative(tmp_path: Path) -> None:
    assert shown_path(tmp_path / "outbox" / "a.eml", tmp_path) == "outbox/a.eml"
    assert shown_path(Path("/elsewhere/b.eml"), tmp_path) == "b.eml"


def _trace() -> list[str]:
    try:
        httpx.URL("http://[::1")  # fails inside site-packages
    except Exception:
        return traceback.format_exc().splitlines()
    raise AssertionError("expected an error")


def test_a_real_traceback_keeps_its_shape_without_absolute_paths(tmp_path: Path) -> None:
    lines = [*_trace(), f"FileNotFoundError: '{tmp_path}/storage/x.png'"]
    stripped = "\n".join(strip_server_paths(lines, tmp_path))
    assert 'File "/' not in stripped
    assert 'File "httpx/_urls.py"' in stripped, stripped
    assert "'storage/x.png'" in stripped
    for prefix in (sys.prefix, str(tmp_path), str(Path(__file__).parents[2])):
        assert prefix not in stripped


def test_an_unknown_absolute_file_keeps_only_its_last_parts() -> None:
    (line,) = strip_server_paths(['  File "/opt/other/app/mod.py", line 3, in f'])
    assert line == '  File ".../app/mod.py", line 3, in f'
