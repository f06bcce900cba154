"""Cron schedules that enqueue jobs through BullMQ job schedulers."""
