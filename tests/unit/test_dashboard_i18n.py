"""The dashboard's catalogues (en, zh-CN): the same keys and placeholders in both, and every
key the page uses (in app.js or index.html) present in both."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "src" / "kk" / "dashboard" / "static"
LANGS = ("en", "zh-CN")
APP = (STATIC / "app.js").read_text(encoding="utf-8")
HTML = (STATIC / "index.html").read_text(encoding="utf-8")

# Keys built at run time (t(`state.${st}`)): the values each prefix is completed with.
STATES = ["waiting", "active", "delayed", "prioritized", "completed", "failed", "waiting-children"]
DYNAMIC = {
    "state.": [*STATES, "paused", "running", "enabled", "disabled"],
    "card.": ["waiting", "active", "completed", "failed", "delayed", "queues", "health"],
    "col.": [
        "id", "name", "created", "attempts", "data", "reason", "failedAt", "runsAt",
        "started", "finished", "took", "waiting", "active", "completed", "failed", "delayed",
    ],
    "action.": ["pause", "resume", "enable", "disable"],
    "confirm.": ["pauseQueue", "resumeQueue", "enableSchedule", "disableSchedule"],
    "done.": ["pauseQueue", "resumeQueue", "enableSchedule", "disableSchedule"],
    "role.": ["read", "admin"],
    "level.": ["warning", "critical"],
    "alert.rule.": ["waiting", "failed", "failure_ratio", "oldest_waiting", "paused"],
    "grace.": ["any", "hour", "day", "week"],
    "error.": ["QUEUE_NOT_FOUND", "INVALID_QUEUE_NAME", "JOB_NOT_FOUND"],
    "lang.": ["en", "zh-CN"],
}  # fmt: skip


def catalogue(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def used_keys() -> set[str]:
    namespaces = {key.split(".")[0] for key in catalogue("en")}
    literal = re.findall(r"""["'`]([a-z][A-Za-z]*(?:\.[\w-]+)+)["'`]""", APP)
    keys = {k for k in literal if k.split(".")[0] in namespaces}
    keys |= set(re.findall(r'data-i18n(?:-placeholder)?="([^"]+)"', HTML))
    for prefix in re.findall(r"`([a-z][A-Za-z.]*\.)\$\{", APP):
        assert prefix in DYNAMIC, f"app.js builds keys from {prefix!r}: list its values here"
        keys |= {prefix + v for v in DYNAMIC[prefix]}
    return keys


def test_both_languages_have_the_same_keys_and_placeholders():
    en, zh = catalogue("en"), catalogue("zh-CN")
    assert sorted(set(en) - set(zh)) == [], "missing in zh-CN"
    assert sorted(set(zh) - set(en)) == [], "missing in en"
    for key in en:
        assert en[key].strip() and zh[key].strip(), key
        assert placeholders(en[key]) == placeholders(zh[key]), key


@pytest.mark.parametrize("lang", LANGS)
def test_every_key_the_page_uses_is_in_the_catalogue(lang):
    missing = sorted(used_keys() - set(catalogue(lang)))
    assert missing == [], f"used by the page but missing in {lang}.json"


def test_no_catalogue_key_is_left_unused():
    assert sorted(set(catalogue("en")) - used_keys()) == []


def test_the_scan_sees_a_missing_key():
    # The check above would see a string added to app.js without a catalogue entry.
    namespaces = {key.split(".")[0] for key in catalogue("en")}
    sample = 'h("span", { text: t("job.brandNew") })'
    found = re.findall(r"""["'`]([a-z][A-Za-z]*(?:\.[\w-]+)+)["'`]""", sample)
    assert [k for k in found if k.split(".")[0] in namespaces] == ["job.brandNew"]
    assert "job.brandNew" not in catalogue("en")


def test_chinese_is_chinese():
    en, zh = catalogue("en"), catalogue("zh-CN")
    same = sorted(k for k in en if en[k] == zh[k])
    assert same == ["lang.en", "lang.zh-CN"]  # each language is named in its own script
