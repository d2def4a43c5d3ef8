"""The streamrec application: a run's pipeline, the wire, the overlay, the web interface, the service and the tools.

Rooms, lower first (a module imports only its own room or lower ones): `pipeline` (its parts), `wire` and
`overlay`, `web`, `pipeline.app` (the composition root), `service`, `tools`, then `cli`."""
