"""The web dashboard and its API: overview, alerts, health, throughput, schedules, actions."""
