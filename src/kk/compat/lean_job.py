"""A `bullmq.Job` from its Redis hash, as `Job.fromJSON` builds it, for less CPU.

`Job.fromJSON` runs `Job.__init__` (whose defaults it then overwrites) and four `json.loads`
per job; on a busy worker that is about a quarter of the Python time per job. This sets the
same attributes directly and skips the parses whose stored value is the default. Jobs with
a parent, a dependency option or deduplication go through `Job.fromJSON` itself (they
carry the checks and fields that only `Job.__init__` knows).

Sets every attribute `Job.__init__` sets: written for the `bullmq` version in
`kk.compat.TUNED_ONLY`; `tests/unit/test_chaining_worker_parts.py` compares the two
attribute by attribute.
"""

from __future__ import annotations

import json
from typing import Any

from bullmq import Job
from bullmq.backoffs import Backoffs
from bullmq.job import optsDecodeMap

# Options that make `Job.__init__` do more than copy fields: left to it.
_BY_THE_PACKAGE = frozenset(
    {
        "parent",
        "deduplication",
        "failParentOnFailure",
        "continueParentOnFailure",
        "ignoreDependencyOnFailure",
        "removeDependencyOnFailure",
    }
)


def job_from_hash(queue: Any, raw: dict[str, Any], job_id: str | None) -> Job:
    """What `Job.fromJSON(queue, raw, job_id)` returns, built directly."""
    stored = json.loads(raw.get("opts", "{}"))
    opts = {optsDecodeMap.get(key, key): value for key, value in stored.items()}
    if not _BY_THE_PACKAGE.isdisjoint(opts):
        return Job.fromJSON(queue, raw, job_id)
    get = raw.get
    job = Job.__new__(Job)
    job.name = get("name")
    job.id = job_id or get("id", b"").decode("utf-8")
    progress = get("progress")
    job.progress = 0 if progress is None or progress == "0" else json.loads(progress)
    job.timestamp = int(get("timestamp", "0"))
    job.discarded = False
    final_opts: dict[str, Any] = {"attempts": 0, "delay": 0}
    final_opts.update(opts)
    final_opts["backoff"] = Backoffs.normalize(opts.get("backoff"))
    job.opts = final_opts
    job.queue = queue
    job.delay = int(get("delay", "0"))
    job.priority = int(get("priority", "0"))
    job.attempts = opts.get("attempts", 1)
    job.attemptsMade = int(get("attemptsMade") or get("atm") or "0")
    job.attemptsStarted = int(started) if (started := get("ats")) else 0
    job.stalledCounter = int(get("stc") or "0")
    job.data = json.loads(get("data", "{}"))
    job.removeOnComplete = opts.get("removeOnComplete", True)
    job.removeOnFail = opts.get("removeOnFail", False)
    job.processedOn = int(processed) if (processed := get("processedOn")) else 0
    job.finishedOn = int(finished) if (finished := get("finishedOn")) else 0
    returnvalue = get("returnvalue")
    job.returnvalue = _return_value(returnvalue) if type(returnvalue) is str else None
    job.deferredFailure = get("defa") or None
    job.failedReason = get("failedReason") or None
    job.repeatJobKey = get("rjk") or None
    job.token = None
    job.parentKey = get("parentKey") or None
    job.parent = json.loads(parent) if (parent := get("parent")) else None
    stacktrace = get("stacktrace")
    job.stacktrace = [] if stacktrace is None or stacktrace == "[]" else json.loads(stacktrace)
    job.deduplication_id = None
    job.backend = queue.backend
    job.queueQualifiedName = queue.qualifiedName
    return job


def _return_value(value: str) -> Any:
    try:
        return json.loads(value)
    except Exception:  # the package keeps a value that is not JSON as it is
        return value
