"""Bodies and answers of the /api/queues routes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class JobStatus(StrEnum):
    waiting = "waiting"
    active = "active"
    completed = "completed"
    failed = "failed"
    delayed = "delayed"
    prioritized = "prioritized"
    waiting_children = "waiting-children"


class CleanableStatus(StrEnum):
    completed = "completed"
    failed = "failed"
    delayed = "delayed"
    waiting = "waiting"
    prioritized = "prioritized"


class QueueStats(BaseModel):
    name: str
    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    paused: bool
    prioritized: int = 0
    waitingChildren: int = 0


class JobView(BaseModel):
    id: str
    name: str
    data: Any
    progress: Any = 0
    status: str
    createdAt: str | None
    attempts: int
    delay: int = 0
    failedReason: str | None = None
    stacktrace: list[str] | None = None
    returnValue: Any = None
    processedOn: str | None = None
    finishedOn: str | None = None
    priority: int = 0
    opts: dict[str, Any] = Field(default_factory=dict)


class Backoff(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["fixed", "exponential"] = "exponential"
    delay: int = Field(1000, ge=0, le=86_400_000)


class JobOptions(BaseModel):
    """The allow-list of options a client may set (never passed through wholesale)."""

    model_config = ConfigDict(extra="forbid")
    delay: int | None = Field(None, ge=0, description="milliseconds before the job may run")
    attempts: int | None = Field(None, ge=1, le=100)
    backoff: Backoff | None = None
    priority: int | None = Field(None, ge=0, le=2_097_152, description="0 = none; 1 is highest")
    jobId: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.@-]+$",
        description="idempotent add: a second add with the same id returns the existing job",
    )


class AddEmailJob(BaseModel):
    """The contract's email body, plus optional job options."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["send-email"] = "send-email"
    to: EmailStr
    subject: str = Field(min_length=1, max_length=300)
    template: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)
    options: JobOptions | None = None


class AddJob(BaseModel):
    """Any other queue: a job name, its data (validated by the queue's payload model) and
    options."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    data: dict[str, Any] = Field(default_factory=dict)
    options: JobOptions | None = None


class AddJobsBulk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[AddJob] = Field(min_length=1, max_length=1000)


class AddJobsBulkResult(BaseModel):
    success: Literal[True] = True
    jobIds: list[str]
    message: str


class AddJobResult(BaseModel):
    success: Literal[True] = True
    jobId: str
    message: str


class Ok(BaseModel):
    success: Literal[True] = True
    message: str


class CleanResult(BaseModel):
    success: Literal[True] = True
    message: str
    data: dict[str, int]
