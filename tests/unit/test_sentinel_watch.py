"""The Sentinel watch's reading of events, its gate and its choice among configurations."""

from __future__ import annotations

import asyncio

import pytest

from kk.infra.sentinel_watch import SentinelWatch, master_named

A, B = ("127.0.0.1", 26379), ("127.0.0.1", 26380)


@pytest.mark.parametrize(
    ("channel", "data", "name"),
    [
        ("+switch-master", "kkmaster 127.0.0.1 6379 127.0.0.1 6380", "kkmaster"),
        ("+try-failover", "master kkmaster 127.0.0.1 6379", "kkmaster"),
        ("+selected-slave", "slave 127.0.0.1:6380 127.0.0.1 6380 @ kkmaster 127.0.0.1 6379",
         "kkmaster"),
        ("-failover-abort-not-elected", "master other 127.0.0.1 7000", "other"),
        ("+try-failover", "", None),
    ],
)  # fmt: skip
def test_the_master_an_event_is_about(channel, data, name):
    assert master_named(channel, data) == name


async def test_a_failover_holds_commands_until_every_attempt_ends():
    watch = SentinelWatch([A, B], "kkmaster", {})
    watch._tasks = [asyncio.ensure_future(asyncio.sleep(0))]  # no real Sentinel here
    await watch._on_event(A, "+try-failover", "master kkmaster 127.0.0.1 6379")
    await watch._on_event(B, "+try-failover", "master kkmaster 127.0.0.1 6379")
    await watch._on_event(A, "+try-failover", "master someone-else 127.0.0.1 7000")
    waiting = asyncio.ensure_future(watch.ready())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    # A loses the election; B still fails the master over: still held.
    await watch._on_event(A, "-failover-abort-not-elected", "master kkmaster 127.0.0.1 6379")
    await asyncio.sleep(0.05)
    assert not waiting.done()
    watch.master = ("127.0.0.1", 6379)
    await watch._on_event(B, "+switch-master", "kkmaster 127.0.0.1 6379 127.0.0.1 6380")
    await asyncio.wait_for(waiting, 1)
    assert watch.master == ("127.0.0.1", 6380) and watch.switches == 1
    await watch.close()


async def test_a_hold_never_outlasts_its_bound(monkeypatch):
    monkeypatch.setattr("kk.infra.sentinel_watch.MAX_HOLD_S", 0.2)
    watch = SentinelWatch([A], "kkmaster", {})
    watch._tasks = [asyncio.ensure_future(asyncio.sleep(0))]
    await watch._on_event(A, "+try-failover", "master kkmaster 127.0.0.1 6379")
    await asyncio.wait_for(watch.ready(), 1)
    assert watch._open.is_set()
    await watch.close()


async def test_a_switch_raises_the_epoch_so_an_older_configuration_never_wins():
    watch = SentinelWatch([A], "kkmaster", {})
    await watch.switch(("127.0.0.1", 6379), epoch=3)
    await watch.switch(("127.0.0.1", 6380))  # heard as an event: epoch unknown, above 3
    assert watch.epoch == 4
    # The same event from the other Sentinels changes nothing.
    await watch.switch(("127.0.0.1", 6380))
    assert watch.epoch == 4 and watch.switches == 1


async def test_a_late_attempt_on_the_old_master_holds_nothing():
    watch = SentinelWatch([A, B], "kkmaster", {})
    watch._tasks = [asyncio.ensure_future(asyncio.sleep(0))]
    watch.master = ("127.0.0.1", 6379)
    await watch._on_event(A, "+switch-master", "kkmaster 127.0.0.1 6379 127.0.0.1 6380")
    # B noticed the old master's failure late, and tries to fail *it* over.
    await watch._on_event(B, "+try-failover", "master kkmaster 127.0.0.1 6379")
    await asyncio.wait_for(watch.ready(), 0.1)
    # An attempt on the master we follow does hold.
    await watch._on_event(B, "+try-failover", "master kkmaster 127.0.0.1 6380")
    waiting = asyncio.ensure_future(watch.ready())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    waiting.cancel()
    await watch.close()
