"""The access token: read it from the config, and a middleware that asks for it on every path but /healthz."""

from __future__ import annotations

import hashlib
import hmac
from html import escape
from typing import Awaitable, Callable, Optional

from aiohttp import web

from config.loader import ConfigError
from config.schema import HttpConfig

OPEN_PATHS = frozenset({"/healthz"})
COOKIE = "streamrec_session"
COOKIE_MAX_AGE_S = 12 * 3600
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def load_token(http: HttpConfig) -> Optional[str]:
    """The configured token (http.token, or the first line of http.token_file), or None; ConfigError when unreadable."""
    if http.token is not None:
        return http.token.get_secret_value().strip()
    if http.token_file is None:
        return None
    try:
        lines = http.token_file.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"http.token_file: cannot read {http.token_file}: {exc.strerror}; "
                          "make it readable by the service user") from None
    token = lines[0].strip() if lines else ""
    if len(token) < 16:
        raise ConfigError(f"http.token_file: {http.token_file} must hold a token of at least 16 characters on its first line")
    return token


def session_value(token: str) -> str:
    """What the cookie holds: derived from the token, so the cookie jar never stores the token itself."""
    return hmac.new(token.encode(), b"streamrec web session", hashlib.sha256).hexdigest()


def token_middleware(token: str) -> Callable:
    """Require `Authorization: Bearer TOKEN` or the session cookie; `?token=TOKEN` once sets the cookie (for browsers)."""
    session = session_value(token)

    def matches(candidate: Optional[str], expected: str) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), expected.encode())

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        if "token" in request.query:
            if not matches(request.query["token"], token):
                return _unauthorized(request, "wrong token")
            if request.method != "GET":
                return await handler(request)
            # Swap the token in the address for a cookie, so it leaves the address bar and the history.
            location = request.rel_url.with_query([(k, v) for k, v in request.query.items() if k != "token"])
            response = web.Response(status=303, headers={"Location": str(location)})
            response.set_cookie(COOKIE, session, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="Strict", path="/")
            return response
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if (scheme.lower() == "bearer" and matches(credentials.strip(), token)) or matches(request.cookies.get(COOKIE), session):
            return await handler(request)
        return _unauthorized(request, "this streamrec needs its access token (http.token)")

    return require_token


def _unauthorized(request: web.Request, reason: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="streamrec"'}
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        return web.Response(status=401, text=LOGIN_PAGE.format(reason=escape(reason)), content_type="text/html",
                            headers=headers)
    return web.json_response({"error": f"{reason}: send 'Authorization: Bearer TOKEN'"}, status=401, headers=headers)


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>streamrec: access token</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px system-ui,sans-serif;background:#f4f5f7;display:grid;place-items:center;height:100vh;margin:0}}
form{{background:#fff;padding:2rem;border-radius:10px;box-shadow:0 2px 10px #0002}}input{{font:inherit;padding:.4rem;width:18rem}}
button{{font:inherit;padding:.4rem 1rem}}p{{color:#a33}}</style></head><body>
<form method="get"><h1>streamrec</h1><p>{reason}</p><label>Access token<br><input name="token" type="password" autofocus
autocomplete="current-password"></label> <button>Open</button></form></body></html>"""
