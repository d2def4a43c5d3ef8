"""The web interface and HTTP API inside `streamrec run`: status page, previews, /predict, /healthz, /metrics.

Kept free of imports: `stream.web.errors` is read by the CLI, which must not pull aiohttp in."""
