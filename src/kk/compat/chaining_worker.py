"""A `bullmq.Worker` that chains jobs the way Node's BullMQ does.

The stock Python worker finishes a job with `fetch_next=False`, then goes back to its main
loop to ask for the next one: two or three round trips per job (moveToFinished, then
BZPOPMIN on the marker and moveToActive). BullMQ's `moveToFinished` Lua script can hand
back the next job in the same call, locked with the same token — Node's worker relies on
that. This subclass does the same, so a busy worker spends one round trip per job. The
Redis data model and the Lua scripts are untouched.

It overrides `Worker.processJob` and uses the worker's private `lockManager`,
`_processor_wants_signal` and a job's `deferredFailure`: written for the `bullmq` version in
`kk.compat.TUNED_ONLY` (`KK_TUNED_WORKER=false` runs the stock `bullmq.Worker` instead).
"""

from __future__ import annotations

import time
from typing import Any

from bullmq import Job, Worker
from bullmq.custom_errors.delayed_error import DelayedError
from bullmq.custom_errors.unrecoverable_error import UnrecoverableError
from bullmq.custom_errors.waiting_children_error import WaitingChildrenError


class ChainingWorker(Worker):
    async def nextJobFromJobData(
        self,
        job_data: dict | None = None,
        job_id: str | None = None,
        limit_until: int = 0,
        delay_until: int = 0,
        token: str | None = None,
    ) -> Job | None:
        try:
            return await super().nextJobFromJobData(
                job_data, job_id, limit_until, delay_until, token
            )
        except ValueError as exc:  # json.JSONDecodeError: another producer wrote bad JSON
            if not job_data or not job_id or token is None:
                raise
            # Fail it now with the reason, rather than let it crash the fetch, sit in
            # active until its lock expires and end as "stalled" with no explanation.
            job = Job(self, job_data.get("name", ""), None, {"attempts": 1}, job_id)
            error = UnrecoverableError(f"job data or options are not valid JSON: {exc}")
            await job.moveToFailed(error, token)
            self.emit("failed", job, error)
            return None

    async def processJob(self, job: Job, token: str) -> None:
        next_job: Job | None = job
        while next_job is not None:
            next_job = await self._process_then_fetch(next_job, token)

    async def _process_then_fetch(self, job: Job, token: str) -> Job | None:
        next_data: list[Any] | None = None
        try:
            if "removeOnComplete" not in job.opts and "removeOnComplete" in self.opts:
                job.opts["removeOnComplete"] = self.opts["removeOnComplete"]
            if "removeOnFail" not in job.opts and "removeOnFail" in self.opts:
                job.opts["removeOnFail"] = self.opts["removeOnFail"]
            self.jobs.add((job, token))
            controller = self.lockManager.track_job(
                job.id,
                token,
                int(time.time() * 1000),
                should_create_controller=self._processor_wants_signal,
            )
            if job.deferredFailure:
                await job.moveToFailed(UnrecoverableError(job.deferredFailure), token)
                self.emit("failed", job, UnrecoverableError(job.deferredFailure))
                return None
            if controller is not None:
                result = await self.processor(job, token, controller.signal)
            else:
                result = await self.processor(job, token)
            if not self.forceClosing:
                fetch_next = not (self.closing or self.paused)
                finished = await self.backend.moveToCompleted(
                    job, result, job.opts.get("removeOnComplete", False), token, fetch_next
                )
                job.returnvalue = result
                job.attemptsMade = job.attemptsMade + 1
                if fetch_next:
                    next_data = finished.get("result")
            self.emit("completed", job, result)
        except (DelayedError, WaitingChildrenError):
            return None
        except Exception as err:
            try:
                if not self.forceClosing:
                    await job.moveToFailed(err, token)
                self.emit("failed", job, err)
            except Exception as error:
                self.emit("error", error, job)
            return None
        finally:
            self.jobs.discard((job, token))
            self.lockManager.untrack_job(job.id)
        if not next_data:
            return None
        job_data, job_id, limit_until, delay_until = next_data
        # Also updates the worker's drained/rate-limit state, as moveToActive would.
        next_job = await self.nextJobFromJobData(
            job_data, job_id, int(limit_until or 0), int(delay_until or 0), token
        )
        if next_job is not None:
            self.emit("active", next_job, "waiting")
        return next_job
