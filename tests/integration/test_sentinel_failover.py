"""Sentinel failovers under load: a master, a replica and three real Sentinels, `kk serve`
taking adds over HTTP and a `kk worker` running them, while the master is handed over
(`SENTINEL FAILOVER`), killed (`kill -9`) or frozen and then demoted.

Every acknowledged add must run; no job may run twice beyond those in flight; the worker
must be back on the new master within seconds.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.add_load import AddLoad, held, runs_of, unfinished
from tests.support.redis_topologies import SentinelGroup, sentinel_group, server_binary
from tests.support.server import start_server, start_worker, wait_for

pytestmark = pytest.mark.skipif(server_binary() is None, reason="needs a Redis server binary")

QUEUE = "f-work"
CONCURRENCY = 8
# Every completed job is kept, so the final master shows which acknowledged adds it holds.
QUEUES = {
    QUEUE: {
        "processor": "tests.support.processors:recorded",
        "attempts": 3,
        "keep_completed": 1_000_000,
    }
}


def _kept(group: SentinelGroup) -> set[int]:
    """The `n` of every job the master holds now, whatever its state (a job that failed is
    kept, not lost); states other than completed are printed."""
    node = group.node(group.master_port())
    try:
        states = held(node, "bull", QUEUE)
    finally:
        node.close()
    print({state: len(ns) for state, ns in states.items() if ns and state != "completed"})
    return set().union(*states.values())


def _fail_over(
    tmp_path: Path, event: Callable[[SentinelGroup, int], None]
) -> tuple[AddLoad, list[tuple[int, float]], set[int], float]:
    """Runs the service on a Sentinel group under load, makes `event` happen to the
    master, lets a fresh worker drain the queue; returns the load, the runs, the jobs the
    final master holds, and when the Sentinels named the new master."""
    runs = tmp_path / "runs.txt"
    with sentinel_group(tmp_path / "redis") as group:
        env = {
            "KK_REDIS_URL": group.url,
            "KK_QUEUES": json.dumps(QUEUES),
            "KK_SCHEDULES": "{}",
            "KK_LOG_LEVEL": "warning",
            # Jobs that were active on a lost master come back soon, not after 30 s.
            "KK_LOCK_DURATION_MS": "5000",
            "KK_STALLED_INTERVAL_MS": "2000",
        }
        serve_env = {**env, "KK_RUN_WORKERS": "false"}
        with (
            start_server(tmp_path / "serve", serve_env) as srv,
            start_worker(tmp_path / "worker", env, ["--concurrency", str(CONCURRENCY)]),
            AddLoad(srv.url, QUEUE, runs) as load,
        ):
            wait_for(lambda: len(load.acked) > 300, timeout=30, what="adds under way")
            old = group.master_port()
            event(group, old)
            group.wait_switched(old)
            switched_at = time.time()
            if group.procs[old].poll() is not None:  # killed: back, empty, as a replica
                group.procs[old] = group.restart(old)
            # Adds go on across the switch, until the old master is a replica again.
            wait_for(lambda: len(load.acked) > 300 + 1000, timeout=60, what="adds after")
            group.wait_replica(old, timeout=60)
            time.sleep(1)
        # Every acknowledged add the master holds runs: wait for the queue to drain (retries
        # in their backoff included).
        with start_worker(tmp_path / "drain", env, ["--concurrency", str(CONCURRENCY)]):
            counts = group.node(group.master_port())
            wait_for(lambda: unfinished(counts, "bull", QUEUE) == 0, timeout=60, what="drained")
            counts.close()
        return load, runs_of(runs), _kept(group), switched_at


def _report(
    load: AddLoad, runs: list[tuple[int, float]], kept: set[int]
) -> tuple[set[int], dict[int, int]]:
    """Acknowledged jobs the final master does not hold, and jobs run twice."""
    ran = {n for n, _ in runs}
    missing = set(load.acked) - kept
    twice = {n: c for n, c in Counter(n for n, _ in runs).items() if c > 1}
    print(
        f"acknowledged {len(load.acked)}, refused {load.refused}, ran {len(ran)}, "
        f"missing on the final master {len(missing)}, ran twice {len(twice)}"
    )
    return missing, twice


def test_a_graceful_failover_loses_no_acknowledged_job(tmp_path):
    def hand_over(group: SentinelGroup, old: int) -> None:
        group.node(group.sentinel_ports[0]).execute_command(
            "SENTINEL", "FAILOVER", group.master_name
        )

    load, runs, kept, _ = _fail_over(tmp_path, hand_over)
    missing, twice = _report(load, runs, kept)
    assert not missing, f"{len(missing)} acknowledged jobs lost: {sorted(missing)[:20]}"
    assert len(twice) <= CONCURRENCY, f"jobs run twice: {twice}"


def test_a_killed_master_is_followed(tmp_path):
    def kill(group: SentinelGroup, old: int) -> None:
        group.procs[old].kill()
        group.procs[old].wait()

    load, runs, kept, switched_at = _fail_over(tmp_path, kill)
    missing, twice = _report(load, runs, kept)
    assert not missing, f"{len(missing)} acknowledged jobs lost: {sorted(missing)[:20]}"
    assert len(twice) <= CONCURRENCY, f"jobs run twice: {twice}"
    first_after = min(t for _, t in runs if t > switched_at)
    assert first_after - switched_at < 5


def test_a_frozen_master_then_demoted_does_not_stall_the_worker(tmp_path):
    def freeze(group: SentinelGroup, old: int) -> None:
        group.procs[old].send_signal(signal.SIGSTOP)
        threading.Timer(8, group.procs[old].send_signal, [signal.SIGCONT]).start()

    load, runs, kept, switched_at = _fail_over(tmp_path, freeze)
    missing, twice = _report(load, runs, kept)
    # Jobs taken after the switch run within seconds, on the new master.
    after = sorted(t for _, t in runs if t > switched_at)
    assert after and after[0] - switched_at < 5, "the worker did not come back within 5 s"
    # While adds went on (afterwards the queue runs dry, and then the drain worker starts).
    busy_until = min(switched_at + 30, load.stopped_at)
    gaps = [b - a for a, b in itertools.pairwise(after) if b < busy_until]
    assert max(gaps, default=0) < 5, f"the worker stalled {max(gaps):.1f} s"
    assert not missing, f"{len(missing)} acknowledged jobs lost: {sorted(missing)[:20]}"
    assert len(twice) <= CONCURRENCY, f"jobs run twice: {twice}"
