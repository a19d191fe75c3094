"""The page's controls on the bus, and the answer each one caused, sent back to its page.

Only four things can be published, each on its row of the topic table (and the broker's
ACL grants the ``ui`` login exactly these): ``movement/stop``, ``wake/event``, ``tts/say``
and ``movement/command``. A command is sent as a request, so movement's own reply says how
it ended; the others wait for what they cause (``movement/status`` stopped, the next
``system/state``, ``tts/status`` with our ``utt_id``) until a deadline.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tars_mqtt import Message, RequestTimeout
from tars_mqtt.aio import AsyncMQTTClient

from .. import topics as t
from ..common import UNSENDABLE
from .hub import Connection, encode
from .protocol import Command, result_frame

__all__ = ["Controls"]

log = logging.getLogger("tars.ui")
MAX_WAITS = 16  # answers one page awaits at once; STOP is never rate-limited, so bound them
# (state, text) when a message answers a control; state is working, done or failed
Match = Callable[[str, dict[str, Any]], tuple[str, str] | None]


@dataclass
class _Wait:
    conn: Connection
    cmd: Command
    match: Match
    deadline: float
    silence: str  # what to say when nothing answered in time


class Controls:
    """Runs checked commands; ``seen()`` every message, ``expire()`` every tick."""

    def __init__(self, client: AsyncMQTTClient, clock: Callable[[], float], *,
                 answer_timeout: float = 8.0, move_timeout: float = 40.0) -> None:
        self.client, self.clock = client, clock
        self.answer_timeout, self.move_timeout = answer_timeout, move_timeout
        self._waits: list[_Wait] = []

    async def run(self, conn: Connection, cmd: Command) -> None:
        log.info("%s from the page at %s", cmd.op, conn.peer)
        if cmd.op == "move":
            await self._move(conn, cmd)
            return
        match: Match
        if cmd.op == "stop":
            spec, data = t.MOVEMENT_STOP, {"reason": "STOP on the web view"}
            match, silence = _stopped, "no answer: is movement running?"
        elif cmd.op == "wake":
            spec, data = t.WAKE_EVENT, {"type": "wake", "source": "ui"}
            match, silence = _state, "no answer: is the router running?"
        else:
            utt = f"ui-{uuid.uuid4().hex[:12]}"
            spec, data = t.TTS_SAY, {"text": cmd.text, "utt_id": utt}
            match, silence = _speech(utt), "sent; no speech service said it spoke"
        wait = _Wait(conn, cmd, match, self.clock() + self.answer_timeout, silence)
        watched = sum(w.conn is conn for w in self._waits) < MAX_WAITS
        if watched:
            self._waits.append(wait)  # before publishing: the answer may come at once
        try:
            await self.client.publish_event(spec.name, spec.event_type, data, qos=spec.qos,
                                            retain=spec.retain)
        except UNSENDABLE as exc:
            if wait in self._waits:
                self._waits.remove(wait)
            self._answer(conn, cmd, "failed", f"not sent: {exc}")
            return
        if wait in self._waits or not watched:
            self._answer(conn, cmd, "sent", f"sent on {spec.name}")

    async def _move(self, conn: Connection, cmd: Command) -> None:
        spec = t.MOVEMENT_COMMAND
        self._answer(conn, cmd, "sent", f"{cmd.action} sent on {spec.name}")
        try:
            reply = await self.client.request(spec.name, spec.event_type,
                                              {"action": cmd.action, "speed": cmd.speed},
                                              self.move_timeout)
        except RequestTimeout:
            self._answer(conn, cmd, "no answer", "no answer: is movement running?")
            return
        except UNSENDABLE as exc:
            self._answer(conn, cmd, "failed", f"not sent: {exc}")
            return
        data = reply.data if isinstance(reply.data, dict) else {}
        event = str(data.get("event", "?"))
        text = f"{cmd.action}: {event}" + (f" ({data['error']})" if data.get("error") else "")
        self._answer(conn, cmd, "done" if event == "completed" else "failed", text)

    def seen(self, msg: Message) -> None:
        """Let ``msg`` answer the controls waiting for it."""
        if not self._waits or msg.retain or not isinstance(msg.data, dict):
            return
        for wait in list(self._waits):
            found = wait.match(msg.topic, msg.data)
            if found is None:
                continue
            state, text = found
            self._answer(wait.conn, wait.cmd, state, text)
            if state != "working":
                self._waits.remove(wait)

    def expire(self) -> None:
        now = self.clock()
        for wait in [w for w in self._waits if w.deadline <= now or w.conn.closed]:
            self._waits.remove(wait)
            self._answer(wait.conn, wait.cmd, "no answer", wait.silence)

    @staticmethod
    def _answer(conn: Connection, cmd: Command, state: str, text: str) -> None:
        conn.offer(encode(result_frame(cmd.id, cmd.op, state, text)))


def _stopped(topic: str, data: dict[str, Any]) -> tuple[str, str] | None:
    if topic == t.MOVEMENT_STATUS.name and data.get("event") == "stopped":
        return "done", f"movement stopped ({data.get('action', '?')})"
    return None


def _state(topic: str, data: dict[str, Any]) -> tuple[str, str] | None:
    if topic == t.SYSTEM_STATE.name and isinstance(data.get("state"), str):
        return "done", f"state: {data['state'][:32]}"
    return None


def _speech(utt: str) -> Match:
    def match(topic: str, data: dict[str, Any]) -> tuple[str, str] | None:
        if topic != t.TTS_STATUS.name or data.get("utt_id") != utt:
            return None
        if data.get("event") == "speaking_start":
            return "working", "speaking…"
        return "done", "spoken"
    return match
