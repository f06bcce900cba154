"""Worker processes: run the processors of queues with BullMQ workers."""
