"""The HTTP side: the page, its static files, the one WebSocket, and who may reach them.

Bound to loopback (the default), only requests that name this machine (``localhost``,
``127.0.0.1``, ``[::1]``) are served, so a web site in the same browser cannot reach the
page through DNS rebinding. With a token (``TARS_UI_TOKEN_FILE``), ``/login`` trades the
right token for a session cookie (HttpOnly, SameSite=Strict) and nothing else is served
without it. A WebSocket handshake from another origin is refused either way, and every
response forbids framing and scripts from elsewhere.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import WSMsgType, web

from .hub import Connection, Hub, encode
from .protocol import MAX_FRAME, error_frame
from .settings import UISettings

__all__ = ["COOKIE", "STATIC", "make_app"]

log = logging.getLogger("tars.ui")
STATIC = Path(__file__).with_name("static")
COOKIE = "tars_ui"
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]"}
_PUBLIC = {"/login", "/static/style.css", "/favicon.svg", "/favicon.ico"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none';"
                               " frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
OnText = Callable[[Connection, str], Awaitable[None]]
Snapshot = Callable[[Connection], str]


def make_app(settings: UISettings, hub: Hub, on_text: OnText, snapshot: Snapshot
             ) -> web.Application:
    """The application; ``on_text`` handles each text frame, ``snapshot`` the whole picture."""
    session = secrets.token_urlsafe(32)  # what the cookie holds; never the token itself
    failed_logins = 0

    def authorised(request: web.Request) -> bool:
        return settings.token is None or hmac.compare_digest(
            request.cookies.get(COOKIE, "").encode(), session.encode())

    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request],
                                                            Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if settings.token is None and not _names_this_machine(request.host, settings.bind):
            return _plain(421, "this page answers only to localhost / 127.0.0.1")
        if request.path not in _PUBLIC and not authorised(request):
            if request.path == "/":
                raise web.HTTPFound("/login")
            return _plain(401, "log in at /login first")
        response = await handler(request)
        if not response.prepared:
            response.headers.update(_HEADERS)
        return response

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def login_page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "login.html")

    async def favicon(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "favicon.svg",
                                headers={"Content-Type": "image/svg+xml"})

    async def login(request: web.Request) -> web.StreamResponse:
        nonlocal failed_logins
        if not _same_origin(request):
            return _plain(403, "cross-origin login refused")
        form = await request.post()
        given = form.get("token")
        if settings.token is not None and isinstance(given, str) and hmac.compare_digest(
                given.strip().encode(), settings.token.encode()):
            log.info("login from %s", request.remote)
            response = web.HTTPFound("/")
            response.set_cookie(COOKIE, session, httponly=True, samesite="Strict", path="/",
                                secure=settings.tls_cert is not None)
            raise response
        failed_logins += 1
        log.warning("wrong token from %s (%d failed logins so far)", request.remote,
                    failed_logins)
        await asyncio.sleep(1.0)  # slows guessing down; the token's length makes it hopeless
        return _plain(403, "wrong token")

    async def socket(request: web.Request) -> web.StreamResponse:
        if not _same_origin(request):
            log.warning("WebSocket from origin %r refused", request.headers.get("Origin"))
            return _plain(403, "cross-origin WebSocket refused")
        if len(hub.connections) >= settings.max_clients:
            return _plain(503, f"already {settings.max_clients} pages open")
        return await serve_socket(request, hub, settings.queue, on_text, snapshot)

    app = web.Application(middlewares=[guard], client_max_size=4096)
    app.router.add_get("/", index)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_get("/ws", socket)
    app.router.add_get("/favicon.svg", favicon)
    app.router.add_get("/favicon.ico", favicon)  # asked for whatever the page says
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    return app


async def serve_socket(request: web.Request, hub: Hub, limit: int, on_text: OnText,
                       snapshot: Snapshot) -> web.WebSocketResponse:
    """One page's WebSocket: its writer task sends, this loop reads its commands."""
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=20.0, timeout=2.0)
    await ws.prepare(request)
    transport = request.transport
    conn = Connection(ws.send_str, snapshot, limit=limit, peer=str(request.remote))
    hub.add(conn)
    writer = asyncio.create_task(conn.pump(), name=f"tars-ui-writer-{conn.peer}")

    def writer_done(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        if isinstance(task.exception(), TimeoutError):
            hub.slow_closed += 1
            log.warning("page at %s stopped reading (%d frames dropped): disconnected",
                        conn.peer, conn.dropped)
        conn.close()
        if transport is not None:
            transport.abort()  # a close frame would wait on the same full socket

    writer.add_done_callback(writer_done)
    try:
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                await on_text(conn, frame.data)
            elif frame.type == WSMsgType.BINARY:
                conn.bad_frames += 1
                conn.offer(encode(error_frame("binary frames are not understood: send JSON"
                                              " text")))
            elif frame.type == WSMsgType.ERROR:
                conn.bad_frames += 1
                log.warning("page at %s: %s", conn.peer, ws.exception())
            if conn.closed:
                break
    finally:
        hub.remove(conn)
        writer.cancel()
        if not ws.closed:
            await ws.close()
    return ws


def _names_this_machine(host: str, bind: str) -> bool:
    """Whether a ``Host`` header names this machine (with or without a port)."""
    allowed = _LOOPBACK_HOSTS | {bind, f"[{bind}]"}
    return host in allowed or host.rsplit(":", 1)[0] in allowed


def _same_origin(request: web.Request) -> bool:
    """No ``Origin`` (not a browser) or one naming this very host."""
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", headers=_HEADERS)
