"""The ZeroMQ side: the wire encoder, the publisher socket and thread, heartbeats, CurveZMQ, ipc checks, subscribers."""
