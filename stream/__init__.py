"""The pipeline: queues, batching worker, publisher, overlay, events and the command line."""
