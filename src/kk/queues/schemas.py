"""Bodies and answers of the /api/queues routes."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, field_validator

from kk.json_text import shallow
from kk.names import is_reserved_job_id

# Job data as a client sends it: a JSON object of bounded nesting.
JobData = Annotated[dict[str, Any], BeforeValidator(shallow)]
JobName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


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

    @field_validator("jobId")
    @classmethod
    def _not_a_bullmq_key(cls, value: str | None) -> str | None:
        if value is not None and is_reserved_job_id(value):
            raise ValueError(f"'{value}' is the name of one of BullMQ's own keys")
        return value


class AddEmailJob(BaseModel):
    """The contract's email body, plus optional job options."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["send-email"] = "send-email"
    to: EmailStr
    subject: str = Field(min_length=1, max_length=300)
    template: str = Field(min_length=1, max_length=64)
    data: JobData = Field(default_factory=dict)
    options: JobOptions | None = None


class AddJob(BaseModel):
    """Any other queue: a job name, its data (validated by the queue's payload model) and
    options."""

    model_config = ConfigDict(extra="forbid")
    name: JobName | None = None
    data: JobData = Field(default_factory=dict)
    options: JobOptions | None = None


class AddJobsBulk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jobs: list[AddJob] = Field(min_length=1, max_length=1000)


class TemplateVariable(BaseModel):
    name: str
    description: str


class EmailTemplate(BaseModel):
    name: str
    description: str
    required: list[TemplateVariable] = Field(description="a missing one refuses the job (400)")
    optional: list[TemplateVariable]


class DuplicateJob(BaseModel):
    jobId: str
    state: str = Field(description="the existing job's state (waiting, completed, ...)")


class AddJobsBulkResult(BaseModel):
    """201 when at least one job is new; 200 when every id named an existing job."""

    success: Literal[True] = True
    jobIds: list[str]
    message: str
    duplicates: list[DuplicateJob] = Field(
        default_factory=list,
        description="jobs whose `jobId` was taken: the existing job was kept, the new data ignored",
    )


class AddJobResult(BaseModel):
    """201 for a new job; 200 with `duplicate: true` when `options.jobId` named an existing
    job, which is kept as it is (the new data is ignored)."""

    success: Literal[True] = True
    jobId: str
    message: str
    duplicate: bool = False
    state: str | None = Field(None, description="the existing job's state, on a duplicate")

    @property
    def status_code(self) -> int:
        return 200 if self.duplicate else 201


class Ok(BaseModel):
    success: Literal[True] = True
    message: str


class CleanResult(BaseModel):
    success: Literal[True] = True
    message: str
    data: dict[str, int]
