"""The web view's shell: the MQTT subscription, the pages, the ticks and the web server.

One subscription to ``#`` (in arrival order) feeds :class:`~services.ui.view.RobotView`
and the traffic log of every open page; a tick each second pushes health with fresh ages
and the rate buckets, and ends controls nobody answered. Pages get their frames through
:class:`~services.ui.hub.Hub`, whose queues never make the MQTT side wait.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from typing import Any

from aiohttp import web

from tars_mqtt import Message
from tars_mqtt.aio import AsyncMQTTClient

from .controls import Controls
from .hub import Connection, Hub, encode
from .protocol import CONTROLS, MOVES, BadFrame, Budget, error_frame, parse
from .settings import UISettings
from .view import RobotView, traffic_frame
from .web import make_app

__all__ = ["UI"]

log = logging.getLogger("tars.ui")
RECENT = 100  # traffic-log lines a page gets when it opens
MAX_BAD_FRAMES = 50  # a page that sends more is disconnected (1008)


class UI:
    """The service: the view, the pages, the controls, and the web server around them."""

    def __init__(self, client: AsyncMQTTClient, settings: UISettings) -> None:
        self.client, self.settings = client, settings
        self.view = RobotView(time.monotonic(), stale_after=settings.stale_after)
        self.hub = Hub()
        self.controls = Controls(client, time.monotonic)
        self.app = make_app(settings, self.hub, self.on_text, self.snapshot)
        self.recent: deque[tuple[Message, float]] = deque(maxlen=RECENT)  # for new pages
        self.last_tick: float | None = None  # set once the page is served
        self._budgets: dict[Connection, Budget] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        client.subscribe("#", self.on_message, qos=1)

    async def on_message(self, msg: Message) -> None:
        """Every message, on the loop; only folds and queues, never waits for a page."""
        for frame in self.view.add(msg, time.monotonic()):
            self.hub.broadcast(frame)
        wall = time.time()
        self.recent.append((msg, wall))
        self.hub.traffic(msg.topic, lambda: traffic_frame(msg, wall))
        self.controls.seen(msg)

    def snapshot(self, conn: Connection) -> str:
        frame: dict[str, Any] = {"kind": "hello", "client": self.client.config.client_id,
                                 "moves": list(MOVES), "filter": conn.topic_filter,
                                 "heartbeats": conn.heartbeats, "dropped": conn.dropped,
                                 "recent": [traffic_frame(m, wall) for m, wall in self.recent
                                            if conn.wants(m.topic)],
                                 **self.view.snapshot(time.monotonic(), time.time())}
        return encode(frame)

    async def on_text(self, conn: Connection, text: str) -> None:
        """One text frame from a page: a control, a filter, or an error frame back."""
        try:
            cmd = parse(text)
        except BadFrame as exc:
            conn.bad_frames += 1
            self.view.tally.add("bad_frames")
            conn.offer(encode(error_frame(str(exc))))
            if conn.bad_frames > MAX_BAD_FRAMES:
                log.warning("page at %s sent %d bad frames: disconnected", conn.peer,
                            conn.bad_frames)
                conn.close()
            return
        if cmd.op == "filter":
            conn.topic_filter, conn.heartbeats = cmd.topic, cmd.heartbeats
            conn.offer(encode({"kind": "filter", "topic": cmd.topic,
                               "heartbeats": cmd.heartbeats}))
            return
        assert cmd.op in CONTROLS
        budget = self._budgets.setdefault(conn, Budget(time.monotonic()))
        if cmd.op != "stop" and not budget.take(time.monotonic()):  # STOP always goes
            conn.offer(encode(error_frame("too many controls at once; wait a moment", cmd.id)))
            return
        task = asyncio.create_task(self.controls.run(conn, cmd))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def tick(self) -> None:
        self.last_tick = now = time.monotonic()
        for frame in self.view.tick(now, time.time()):
            self.hub.broadcast(frame)
        self.controls.expire()
        for conn in list(self._budgets):
            if conn.closed:
                del self._budgets[conn]
        for conn in self.hub.connections:
            conn.offer(encode({"kind": "stats", "dropped": conn.dropped,
                               "pages": len(self.hub.connections), "seen": self.view.seen,
                               "malformed": self.view.tally["malformed"]}))

    async def main(self) -> None:
        """Serve the page, then tick once a second until cancelled."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        s = self.settings
        tls = None
        if s.tls_cert and s.tls_key:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(s.tls_cert, s.tls_key)
        try:
            await web.TCPSite(self._runner, s.bind, s.port, ssl_context=tls).start()
        except OSError as exc:
            raise OSError(f"cannot listen on {s.bind}:{s.port}: {exc.strerror}") from None
        log.info("the page is at %s (bound to %s%s)", s.url, s.bind,
                 ", token required" if s.token else "")
        self.last_tick = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            self.tick()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("stopped; %d frames dropped for slow pages, %d slow pages disconnected,"
                 " counts %s", self.hub.dropped, self.hub.slow_closed, self.view.tally.as_dict())

    def liveness(self) -> str | None:
        if self.last_tick is None:
            return None
        late = time.monotonic() - self.last_tick
        return f"the page's tick has not run for {late:.0f} s" if late > 10.0 else None
