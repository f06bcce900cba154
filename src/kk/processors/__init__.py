"""Job processors, one module per built-in queue."""
