"""Following a Sentinel-managed master: every pool of the process moves at once.

redis-py asks the Sentinels for the master only when a pooled connection connects. An
idle or busy connection to a master that has just been demoted keeps writing to it, and
Sentinel later discards those writes when it makes the old master a replica: adds that
were acknowledged vanish. So one watch per master (per process):

- listens to every Sentinel's events and polls their configurations each second, trusting
  the one with the highest config epoch, so a Sentinel that lags behind never wins;
- holds new commands while a failover is under way (from a Sentinel's `+try-failover` to
  its `+switch-master` or abort): a command sent to the old master between the replica's
  promotion and the switch would be acknowledged and then lost;
- on a switch, points every registered pool at the new master and drops all of their
  connections, busy ones included (a command blocked on a frozen master fails at once and
  is retried on the new one);
- asks the Sentinels again whenever a connection reconnects (after a connection error or
  a `READONLY` reply from a demoted master), at most every `REFRESH_S`.

A hold lasts at most `MAX_HOLD_S`; callers' own deadlines (the API's answer timeout) still
apply while they wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import RedisError

from kk.compat.redis_pool import (
    MasterFollowingConnection,
    MasterFollowingSSLConnection,
    drop_connections,
)

log = logging.getLogger("kk.redis.sentinel")

POLL_INTERVAL_S = 1.0
REFRESH_S = 0.5
MAX_HOLD_S = 10.0
# Events that say a Sentinel is failing the master over; each Sentinel's attempt ends with
# one of `_ATTEMPT_ENDS` or with the `+switch-master` that ends them all.
_ATTEMPT_STEPS = frozenset(
    {"+try-failover", "+elected-leader", "+failover-state-select-slave", "+selected-slave",
     "+failover-state-send-slaveof-noone", "+failover-state-wait-promotion",
     "+promoted-slave", "+failover-state-reconf-slaves"}
)  # fmt: skip
_ATTEMPT_ENDS = frozenset(
    {"-failover-abort-not-elected", "-failover-abort-no-good-slave",
     "-failover-abort-slave-timeout", "-failover-abort-master-is-back"}
)  # fmt: skip
SWITCH = "+switch-master"
Address = tuple[str, int]


def master_address(data: str) -> Address | None:
    """The address of the master an event is about (`master <name> <ip> <port>`, or the
    three words after `@`), if it names one."""
    words = data.split()
    if "@" in words:
        words = words[words.index("@") :]
    elif words and words[0] != "master":
        return None
    try:
        return words[2], int(words[3])
    except (IndexError, ValueError):
        return None


def master_named(channel: str, data: str) -> str | None:
    """The master an event is about: `+switch-master <name> ...`, `master <name> ...`, or
    `<type> <instance> ... @ <name> <ip> <port>`."""
    words = data.split()
    if channel == SWITCH:
        return words[0] if words else None
    if "@" in words and words.index("@") + 1 < len(words):
        return words[words.index("@") + 1]
    if len(words) > 1 and words[0] == "master":
        return words[1]
    return None


class SentinelWatch:
    def __init__(self, nodes: list[Address], master_name: str, sentinel_kwargs: dict[str, Any]):
        self.nodes = nodes
        self.master_name = master_name
        self.sentinel_kwargs = {**sentinel_kwargs, "decode_responses": True}
        self.master: Address | None = None
        self.epoch = -1  # config epoch of `master`, as far as we know it
        self.switches = 0
        self._pools: weakref.WeakSet[FollowingSentinelPool] = weakref.WeakSet()
        self._attempts: dict[Address, float] = {}  # Sentinel -> when its attempt began
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._switching = asyncio.Lock()
        self._polling = asyncio.Lock()
        self._polled_at = -REFRESH_S

    def register(self, pool: FollowingSentinelPool) -> None:
        self._pools.add(pool)

    # -- the gate ---------------------------------------------------------------------------

    async def ready(self) -> None:
        """Returns at once unless a failover is under way; then when it ends."""
        if not self._tasks:
            self._start()
        if self._open.is_set():
            return
        held_since = min(self._attempts.values(), default=time.monotonic())
        remaining = MAX_HOLD_S - (time.monotonic() - held_since)
        try:
            async with asyncio.timeout(max(remaining, 0)):
                await self._open.wait()
        except TimeoutError:
            log.warning(
                "Sentinel failover of %s still under way after %.0fs: commands go on",
                self.master_name,
                MAX_HOLD_S,
            )
            self._attempts.clear()
            self._open.set()

    def _attempt(self, sentinel: Address, channel: str) -> None:
        if channel in _ATTEMPT_STEPS:
            self._attempts.setdefault(sentinel, time.monotonic())
        else:
            self._attempts.pop(sentinel, None)
        if self._attempts:
            self._open.clear()
        else:
            self._open.set()

    # -- following --------------------------------------------------------------------------

    async def switch(self, address: Address, epoch: int | None = None) -> None:
        """Points every pool at `address` and drops their connections."""
        async with self._switching:
            changed = self.master is not None and address != self.master
            if epoch is not None:
                self.epoch = epoch
            elif address != self.master:
                self.epoch += 1  # a switch raises the epoch: an older poll can't undo it
            self.master = address
            if changed:
                self.switches += 1
                log.warning(
                    "Redis master %s moved to %s:%d: reconnecting every pool",
                    self.master_name,
                    *address,
                )
                pools = list(self._pools)
                for pool in pools:
                    pool.master_address = address
                await asyncio.gather(*map(drop_connections, pools), return_exceptions=True)
            self._attempts.clear()
            self._open.set()

    async def _ask(self, node: Address) -> tuple[int, Address] | None:
        """One Sentinel's configuration of the master: (config epoch, address)."""
        client = aioredis.Redis(host=node[0], port=node[1], **self.sentinel_kwargs)
        try:
            state: dict[str, Any] = await client.sentinel_master(self.master_name)  # type: ignore[assignment]
            return int(state.get("config-epoch", 0)), (str(state["ip"]), int(state["port"]))
        except (RedisError, OSError, KeyError, ValueError):
            return None
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def poll(self) -> None:
        """Asks every Sentinel at once for its configuration and follows the newest one."""
        answers = [a for a in await asyncio.gather(*map(self._ask, self.nodes)) if a]
        if not answers:
            return
        epoch, address = max(answers, key=lambda answer: answer[0])
        if self.master is None or epoch > self.epoch:
            if address != self.master:
                await self.switch(address, epoch)
            self.epoch = epoch

    async def refresh(self) -> None:
        """Polls now, unless a poll ran in the last `REFRESH_S` (reconnects come in bursts)."""
        if time.monotonic() - self._polled_at < REFRESH_S:
            return
        async with self._polling:
            if time.monotonic() - self._polled_at >= REFRESH_S:
                with contextlib.suppress(Exception):
                    await self.poll()
                self._polled_at = time.monotonic()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._poll_forever())]
        self._tasks += [loop.create_task(self._listen(node)) for node in self.nodes]

    async def _poll_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.poll()
            await asyncio.sleep(POLL_INTERVAL_S)

    async def _listen(self, node: Address) -> None:
        """Follows one Sentinel's events, reconnecting when it goes away."""
        while True:
            client = aioredis.Redis(
                host=node[0], port=node[1], **{**self.sentinel_kwargs, "socket_timeout": None}
            )
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(SWITCH, *_ATTEMPT_STEPS, *_ATTEMPT_ENDS)
                while True:
                    message = await pubsub.get_message(timeout=POLL_INTERVAL_S)
                    if message is not None:
                        await self._on_event(node, str(message["channel"]), str(message["data"]))
            except (RedisError, OSError):
                await asyncio.sleep(POLL_INTERVAL_S)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _on_event(self, sentinel: Address, channel: str, data: str) -> None:
        if master_named(channel, data) != self.master_name:
            return
        if channel == SWITCH:
            words = data.split()
            await self.switch((words[3], int(words[4])))
            return
        about = master_address(data)
        if self.master is not None and about is not None and about != self.master:
            # A late Sentinel still trying to fail over the master we already left (it
            # aborts only when its election times out): nothing to hold for.
            return
        self._attempt(sentinel, channel)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


class FollowingSentinelPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, connecting to the master the watch follows and waiting
    while a failover is under way."""

    def __init__(self, service_name: str, sentinel_manager: Any, **kwargs: Any) -> None:
        self.watch: SentinelWatch = kwargs.pop("watch")
        tls = kwargs.pop("ssl", False)
        kwargs["connection_class"] = (
            MasterFollowingSSLConnection if tls else MasterFollowingConnection
        )
        super().__init__(service_name, sentinel_manager, **kwargs)
        self.watch.register(self)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        await self.watch.ready()
        return await super().get_connection(*args, **kwargs)

    async def get_master_address(self) -> Address:
        # Called when a connection (re)connects: after a connection error or a READONLY
        # reply, ask the Sentinels again rather than trusting the host that just failed.
        await self.watch.refresh()
        address = self.watch.master
        if address is None:  # no Sentinel answered the poll: redis-py's own search
            address = await self.sentinel_manager.discover_master(self.service_name)
        if self.master_address != address:
            self.master_address = address
            await self.disconnect(inuse_connections=False)
        return address


_WATCHES: dict[tuple[tuple[Address, ...], str], SentinelWatch] = {}


def watch_for(
    nodes: list[Address], master_name: str, sentinel_kwargs: dict[str, Any]
) -> SentinelWatch:
    """The process's one watch of a master (shared by every client of that master)."""
    key = (tuple(nodes), master_name)
    if key not in _WATCHES:
        _WATCHES[key] = SentinelWatch(nodes, master_name, sentinel_kwargs)
    return _WATCHES[key]


async def close_watches() -> None:
    watches = list(_WATCHES.values())
    _WATCHES.clear()
    for watch in watches:
        await watch.close()
