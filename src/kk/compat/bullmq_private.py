"""`bullmq`'s `getJobs` script, called directly: the one private part of `bullmq` the service
uses in every mode (the tuned mode's others are `chaining_worker` and `add_batcher`)."""

from __future__ import annotations

from typing import Any

from bullmq import Queue


async def get_jobs_raw(queue: Queue, keys: list[str], args: list[Any]) -> list[Any]:
    """One page of a state, each job's hash included, in one round trip: the script
    `Queue.getJobs` runs, without building a Job object per entry."""
    return await queue.scripts.commands["getJobs"](keys=keys, args=args)


def get_jobs_sha(queue: Queue) -> str:
    """The script's SHA1: the API client re-sends it after a dropped connection, as it
    only reads (see `BoundedRedis`)."""
    return str(queue.scripts.commands["getJobs"].sha)
