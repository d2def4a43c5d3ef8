"""Camera sources and the capture thread (one per camera) that feeds bounded frame queues.

Import the submodules directly (`capture.thread`, `capture.queue`, …).
"""
