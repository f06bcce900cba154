"""The compat package knows exactly which library versions its private-part uses were
written for: the installed ones, the pins in pyproject.toml and the lock file agree with
it, and any other version refuses the tuned mode with a way out."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest

import kk.compat as compat

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_libraries_are_the_ones_the_compat_package_was_written_for():
    # Loud on purpose: an upgrade of any of these must come with a review of kk.compat.
    assert compat.mismatches() == [], (
        "kk.compat uses private parts of these libraries; review it for the new versions, "
        "then update kk.compat.WRITTEN_FOR and the pins"
    )


def test_pyproject_and_the_lock_pin_exactly_those_versions():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # Extras do not change the version: `uvicorn[standard]==X` pins `uvicorn==X`.
    declared = " ".join(pyproject["project"]["dependencies"]).replace("[standard]", "")
    lock = (ROOT / "requirements.lock").read_text()
    for package, expected in compat.WRITTEN_FOR.items():
        assert f"{package}=={expected}" in declared, f"pyproject must pin {package}=={expected}"
        assert re.search(rf"^{package}=={re.escape(expected)} ", lock, re.M), package


def test_other_versions_refuse_the_tuned_mode_and_name_the_way_out(monkeypatch):
    monkeypatch.setattr(compat, "TUNED_ONLY", {**compat.TUNED_ONLY, "bullmq": "0.0.1"})
    with pytest.raises(compat.UnknownLibraryVersions) as refused:
        compat.check_versions(tuned=True)
    message = str(refused.value)
    assert "bullmq" in message and "0.0.1" in message and "KK_TUNED_WORKER=false" in message


def test_stock_mode_runs_on_other_versions_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(compat, "TUNED_ONLY", {**compat.TUNED_ONLY, "redis": "0.0.1"})
    with caplog.at_level(logging.WARNING, logger="kk.compat"):
        compat.check_versions(tuned=False)
    assert "redis" in caplog.text and "0.0.1" in caplog.text


def test_address_pinning_needs_its_httpx_in_every_mode(monkeypatch):
    monkeypatch.setattr(compat, "ALWAYS", {**compat.ALWAYS, "httpx": "0.0.1"})
    for tuned in (True, False):
        with pytest.raises(compat.UnknownLibraryVersions, match="httpx"):
            compat.check_versions(tuned=tuned)
