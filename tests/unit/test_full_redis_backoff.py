"""The full-Redis backoff: the wait doubles up to its cap, one slot asks at a time, a call
that takes a job ends it, and a closing worker is not kept waiting."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from redis.exceptions import OutOfMemoryError, ResponseError

from kk.workers.backoff import FullRedisBackoff

OOM = "command not allowed when used memory > 'maxmemory'"


def _worker(closing: bool = False) -> SimpleNamespace:
    return SimpleNamespace(closing=closing, paused=False)


def test_the_wait_doubles_up_to_the_cap_and_is_shown():
    gate = FullRedisBackoff(first_s=0.5, max_s=2.0)
    waits = []
    for _ in range(4):
        gate._next_at = 0  # as if the wait had passed
        gate.refused()
        waits.append(gate.delay_s)
    assert waits == [0.5, 1.0, 2.0, 2.0]
    [family] = gate.collect()
    assert family.samples[0].value == 2.0


def test_slots_refused_together_count_as_one_round():
    gate = FullRedisBackoff(first_s=0.5)
    for _ in range(5):
        gate.refused()
    assert gate.delay_s == 0.5


async def _refused() -> None:
    raise OutOfMemoryError(OOM)


async def test_one_slot_asks_at_a_time_and_a_pass_ends_the_backoff():
    gate = FullRedisBackoff(first_s=0.05, max_s=0.05)
    worker = _worker()
    with pytest.raises(OutOfMemoryError):
        await gate.call(worker, _refused)
    assert gate.delay_s == 0.05
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls < 3:
            raise OutOfMemoryError(OOM)
        return "job"

    async def slot() -> str | None:
        while True:
            try:
                return await gate.call(worker, counted)
            except OutOfMemoryError:
                continue

    started = asyncio.get_running_loop().time()
    results = await asyncio.gather(*(slot() for _ in range(5)))
    assert calls == 3 + 4, "two refused probes, then each slot once"
    assert asyncio.get_running_loop().time() - started >= 0.1  # two waits of 0.05 s
    assert results == ["job"] * 5 and gate.delay_s == 0


async def test_a_call_that_finds_no_job_does_not_end_the_backoff_at_once():
    gate = FullRedisBackoff(first_s=0.01, max_s=0.05)
    gate.refused()

    async def no_job() -> None:
        await asyncio.sleep(0)

    assert await gate.call(_worker(), no_job) is None
    assert gate.delay_s == 0.01, "an empty queue wrote nothing: still backing off"
    await asyncio.sleep(0.1)  # 2 * max_s without a refusal
    await gate.call(_worker(), no_job)
    assert gate.delay_s == 0


async def test_other_errors_do_not_back_off_and_closing_ends_the_wait():
    gate = FullRedisBackoff(first_s=30)

    async def script_error() -> None:
        raise ResponseError("ERR something else")

    with pytest.raises(ResponseError):
        await gate.call(_worker(), script_error)
    assert gate.delay_s == 0
    gate.refused()
    assert await asyncio.wait_for(gate.call(_worker(closing=True), _refused), 1) is None
