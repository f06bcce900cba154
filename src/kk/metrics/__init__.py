"""Prometheus metrics on a registry of the app's own (tests and several apps don't clash)."""
