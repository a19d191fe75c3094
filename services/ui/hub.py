"""Fan-out to the open pages: a bounded queue per page, so no page can slow the bus side.

The MQTT side only ever calls :meth:`Connection.offer`, which never waits. Each page has
its own writer task (:meth:`Connection.pump`) that sends what is queued. A page that reads
too slowly fills its queue; then everything queued is dropped (and counted) and the page
is sent a fresh snapshot instead, so its picture of the robot is whole again and only the
traffic log has a gap that it can show. A send that does not finish in ``send_timeout``
(a browser that vanished without closing) ends the connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import ujson

from tars_mqtt.topics import matches

__all__ = ["Connection", "Hub", "encode"]

Send = Callable[[str], Awaitable[None]]


def encode(frame: dict[str, Any]) -> str:
    return ujson.dumps(frame, ensure_ascii=False, escape_forward_slashes=False)


class Connection:
    """One page: its queue of encoded frames, its traffic filter, its drop count."""

    def __init__(self, send: Send, snapshot: Callable[[Connection], str], *, limit: int = 256,
                 send_timeout: float = 10.0, peer: str = "?") -> None:
        self.peer = peer
        self.limit, self.send_timeout = limit, send_timeout
        self.topic_filter, self.heartbeats = "#", False
        self.dropped = self.sent = self.bad_frames = 0
        self.closed = False
        self._send, self._snapshot = send, snapshot
        self._queue: deque[str] = deque()
        self._resync = True  # the first thing a page gets is the whole picture
        self._wakeup = asyncio.Event()
        self._wakeup.set()

    def offer(self, frame: str) -> None:
        """Queue ``frame``; never waits. A full queue is dropped whole for a snapshot."""
        if self.closed:
            return
        if len(self._queue) >= self.limit:
            self.dropped += len(self._queue) + 1
            self._queue.clear()
            self._resync = True
        else:
            self._queue.append(frame)
        self._wakeup.set()

    def wants(self, topic: str) -> bool:
        """Whether this page's traffic log shows ``topic``."""
        if not self.heartbeats and topic.startswith("system/keepalive/"):
            return False
        return matches(self.topic_filter, topic)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def pump(self) -> None:
        """Send queued frames until closed. Raises TimeoutError for a page that stopped reading."""
        while not self.closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            while not self.closed and (self._resync or self._queue):
                if self._resync:
                    self._resync = False
                    frame = self._snapshot(self)
                else:
                    frame = self._queue.popleft()
                async with asyncio.timeout(self.send_timeout):
                    await self._send(frame)
                self.sent += 1

    def close(self) -> None:
        self.closed = True
        self._queue.clear()
        self._wakeup.set()


class Hub:
    """The open pages; what is sent to all of them, and the totals the service logs."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.dropped_closed = 0  # drops of pages that are gone
        self.slow_closed = 0

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)

    def remove(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.discard(conn)
            self.dropped_closed += conn.dropped
        conn.close()

    def broadcast(self, frame: dict[str, Any]) -> None:
        if self.connections:
            text = encode(frame)
            for conn in self.connections:
                conn.offer(text)

    def traffic(self, topic: str, make: Callable[[], dict[str, Any]]) -> None:
        """A traffic-log line, to the pages whose filter shows ``topic`` (made once, if at all)."""
        text = None
        for conn in self.connections:
            if conn.wants(topic):
                text = text or encode(make())
                conn.offer(text)

    @property
    def dropped(self) -> int:
        return self.dropped_closed + sum(c.dropped for c in self.connections)
