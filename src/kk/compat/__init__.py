"""Every use of a library's private parts, in one package, pinned to the versions it was
written for.

The service is faster than stock `bullmq` on redis-py (BENCHMARKS.md) because of a few
changes that reach inside those libraries: a worker that chains jobs as Node's BullMQ does
(`chaining_worker`), finishing each job with one script call written straight to a
connection (`direct_script`) and building the next job without `Job.__init__`
(`lean_job`); adds batched into one pipeline of BullMQ's own scripts (`add_batcher`); and
leaner connection pools that pack commands with hiredis (`redis_pool`). Request heads
are bounded inside uvicorn's HTTP protocol (`bounded_http`). Nothing outside this package
touches a private name of `bullmq`, redis-py or uvicorn.

An upgrade of one of them can change those internals, so `check_versions` runs at start-up:
with other versions than `WRITTEN_FOR`, the tuned mode refuses to start and says how to run
on the stock libraries instead (`KK_TUNED_WORKER=false`: stock `bullmq.Worker`, one script
call per add, redis-py's own pools), which uses their public API only.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

log = logging.getLogger("kk.compat")

# The exact versions whose internals this package was written against (pyproject pins them).
# The tuned mode needs these; stock mode runs on any version of them.
TUNED_ONLY = {"bullmq": "3.4.4", "redis": "8.1.0"}
# The bound on request heads (`bounded_http`: uvicorn's httptools protocol, never
# switched off) needs this.
ALWAYS = {"uvicorn": "0.54.0"}
# Following a Sentinel master on reconnect (`redis_pool.MasterFollowingConnection`) needs this.
SENTINEL = {"redis": "8.1.0"}
WRITTEN_FOR = {**TUNED_ONLY, **ALWAYS}


def installed_version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def mismatches(packages: dict[str, str] = WRITTEN_FOR) -> list[str]:
    """`name X (written for Y)` for every package whose installed version differs."""
    found = []
    for package, expected in packages.items():
        installed = installed_version(package)
        if installed != expected:
            found.append(f"{package} {installed or 'missing'} (written for {expected})")
    return found


class UnknownLibraryVersions(RuntimeError):
    pass


def check_versions(tuned: bool) -> None:
    """Refuse the tuned mode on library versions it does not know; warn in stock mode."""
    pinning = mismatches(ALWAYS)
    if pinning:
        raise UnknownLibraryVersions(
            f"The bound on request heads uses internals of: {', '.join(pinning)}."
            " Install the versions in requirements.lock"
        )
    found = mismatches(TUNED_ONLY)
    if not found:
        return
    listed = ", ".join(found)
    if tuned:
        raise UnknownLibraryVersions(
            f"kk's tuned worker and Redis pools use private parts of: {listed}. Install the "
            "versions in requirements.lock, or set KK_TUNED_WORKER=false to run on the stock "
            "libraries' public API"
        )
    log.warning("Running in stock mode on library versions kk was not tested with: %s", listed)
