"""An httpx transport whose connections go through a network backend of ours.

httpx has no public hook for the network backend; the httpcore pool under its transport has
one, so the transport's private `_pool` is replaced. Written for `kk.compat.ALWAYS`; the
SSRF tests (tests/unit/test_net_guard_pinning.py) fail if a new httpx stops using it.
"""

from __future__ import annotations

import httpcore
import httpx


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=backend
        )
