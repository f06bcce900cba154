"""A job data model of an operator's own, for the dashboard's add form: one field of each
kind the form draws (integer, e-mail, choice, checkbox, optional text, list)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Order(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"orderId": 42, "email": "ada@example.com", "size": "m"}]}
    )

    orderId: int = Field(ge=1, description="the shop's order number")
    email: EmailStr
    size: Literal["s", "m", "l"] = "m"
    express: bool = False
    note: str | None = Field(None, max_length=200)
    items: list[str] = Field(default_factory=list)
