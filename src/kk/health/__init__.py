"""Health checks: the @nestjs/terminus `/health`, `/health/redis` and Kubernetes probes."""
