"""The contract's envelopes, shared by every domain: success and error."""

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from kk.errors import ErrorCode

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    success: Literal[True] = True
    data: T


class FieldError(BaseModel):
    """One invalid field, named as a form names it."""

    field: str = Field(
        description="`data.to`, `jobs[2].data.url`, `options.delay`; empty for the body itself"
    )
    message: str
    type: str = Field(description="pydantic's error type, e.g. `missing`, `greater_than_equal`")


class ErrorBody(BaseModel):
    """Every error answer."""

    success: Literal[False] = False
    error: str = Field(description="what went wrong, for a person")
    code: ErrorCode
    timestamp: str = Field(description="ISO-8601 UTC")
    path: str
    details: list[FieldError] | None = Field(
        None, description="validation errors: one entry per invalid field"
    )
