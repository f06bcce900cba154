"""KK Backend: Redis job queues, a Redis cache and health checks behind a REST API."""

__version__ = "0.1.0"
