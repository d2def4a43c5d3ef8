"""What one run is made of: the composition root (`app.Pipeline`), the batching worker, results, events, stats, health."""
