"""The error formatter and the OpenAPI names: pure functions."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from kk.errors import field_errors, field_path, summary
from kk.openapi import camel_case, readable_name


class Item(BaseModel):
    url: str
    tags: list[int] = []


class Body(BaseModel):
    jobs: list[Item]


def test_field_paths_use_dots_and_brackets():
    assert field_path(["jobs", 2, "data", "url"]) == "jobs[2].data.url"
    assert field_path(["url"], "jobs[2].data") == "jobs[2].data.url"
    assert field_path([0, "a"]) == "[0].a"
    assert field_path([], "data") == "data"
    assert field_path(["data", "2"]) == "data.2"  # a dict key, not a list index


def test_pydantic_errors_become_field_errors():
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"jobs": [{"url": "a"}, {"tags": [1, "x"]}]})
    details = field_errors(caught.value.errors())
    assert details == [
        {"field": "jobs[1].url", "message": "Field required", "type": "missing"},
        {"field": "jobs[1].tags[1]", "type": "int_parsing",
         "message": "Input should be a valid integer, unable to parse string as an integer"},
    ]  # fmt: skip
    assert summary(details, "Invalid request") == (
        "Invalid request: jobs[1].url: Field required (and 1 more)"
    )
    root = [{"field": "", "message": "Input should be an object", "type": "dict_type"}]
    assert summary(root, "invalid job data", "data") == (
        "invalid job data: data: Input should be an object"
    )


def test_openapi_names():
    assert readable_name("Envelope_list_JobView__") == "JobListResponse"
    assert readable_name("Envelope_BasicDemo_") == "BasicDemoResponse"
    assert readable_name("Envelope_QueueStats_") == "QueueStatsResponse"
    assert readable_name("MessageEnvelope_PutResult_") == "PutResponse"
    assert readable_name("JobView") == "JobView"
    assert camel_case("add_jobs_bulk") == "addJobsBulk"
    assert camel_case("metrics") == "metrics"


def test_an_english_count_agrees_with_its_noun():
    from kk.text import counted

    assert [counted(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]
