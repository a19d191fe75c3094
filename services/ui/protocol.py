"""The browser's side of the WebSocket: what it may send, checked before anything happens (pure).

Every frame from a page is one JSON object with an ``op``::

    {"op": "stop", "id": "c1"}                         big STOP: movement/stop
    {"op": "wake", "id": "c2"}                         wake/event (type wake, source ui)
    {"op": "say", "id": "c3", "text": "hello"}        tts/say
    {"op": "move", "id": "c4", "action": "wave", "speed": 1.0}    movement/command
    {"op": "filter", "topic": "movement/#", "heartbeats": false}  what the traffic log gets

``parse`` turns a frame into a :class:`Command` or raises :class:`BadFrame` naming what was
wrong; the server answers that with an ``error`` frame and counts it. :class:`Budget`
limits how many controls one page may fire per second (STOP is never limited).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import ujson

from hw import MOTION_NAMES
from tars_mqtt.topics import validate_filter

from ..text import clean, encodable

__all__ = [
    "CONTROLS", "MAX_FRAME", "MAX_TEXT", "BadFrame", "Budget", "Command", "error_frame",
    "parse", "result_frame",
]

MAX_FRAME = 4096  # bytes; a bigger frame closes the connection (1009)
MAX_TEXT = 500
MAX_ID = 64
CONTROLS = ("stop", "wake", "say", "move")
_OPS = (*CONTROLS, "filter")
MOVES = tuple(m for m in MOTION_NAMES if m != "pose")  # a pose needs angles: not a button


class BadFrame(ValueError):
    """A frame the server will not act on; the message says why (and is sent back)."""


@dataclass(frozen=True)
class Command:
    """One checked request from a page."""

    op: str
    id: str | None = None
    text: str = ""
    action: str = ""
    speed: float = 1.0
    topic: str = "#"
    heartbeats: bool = False


def parse(frame: str) -> Command:
    """The command in one text frame.

    Raises:
        BadFrame: not JSON, not an object, an unknown ``op``, or a field of the wrong kind.
    """
    try:
        value: Any = ujson.loads(frame)
    except (ValueError, TypeError, OverflowError):
        raise BadFrame("not JSON") from None
    if not isinstance(value, dict):
        raise BadFrame(f"a frame must be a JSON object, got {type(value).__name__}")
    for key, item in value.items():  # "\ud800" is JSON, but echoed or sent on it raises
        if not encodable(key) or isinstance(item, str) and not encodable(item):
            raise BadFrame(f"{clean(key, 20)!r} is not valid UTF-8 text")
    op = value.get("op")
    if op not in _OPS:
        shown = op if isinstance(op, str) else type(op).__name__
        raise BadFrame(f"unknown op {shown[:40]!r}; known: {', '.join(_OPS)}")
    cid = value.get("id")
    if cid is not None and (not isinstance(cid, str) or not 0 < len(cid) <= MAX_ID):
        raise BadFrame(f"'id' must be a string of 1..{MAX_ID} characters")
    if op == "say":
        text = value.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadFrame("say needs a non-empty 'text'")
        if len(text) > MAX_TEXT:
            raise BadFrame(f"say: 'text' is {len(text)} characters, at most {MAX_TEXT}")
        return Command(op, cid, text=" ".join(text.split()))
    if op == "move":
        action, speed = value.get("action"), value.get("speed", 1.0)
        if action not in MOVES:
            raise BadFrame(f"move: unknown 'action'; known: {', '.join(MOVES)}")
        if isinstance(speed, bool) or not isinstance(speed, int | float) \
                or not math.isfinite(speed) or not 0.1 <= speed <= 3.0:
            raise BadFrame("move: 'speed' must be a number in 0.1..3")
        return Command(op, cid, action=action, speed=float(speed))
    if op == "filter":
        topic, beats = value.get("topic", "#"), value.get("heartbeats", False)
        if not isinstance(topic, str) or not isinstance(beats, bool):
            raise BadFrame("filter needs a string 'topic' and a boolean 'heartbeats'")
        try:
            validate_filter(topic.strip() or "#")
        except ValueError as exc:
            raise BadFrame(f"filter: {exc}") from None
        return Command(op, cid, topic=topic.strip() or "#", heartbeats=beats)
    return Command(op, cid)


class Budget:
    """A token bucket per page: ``rate`` controls a second, bursts of ``burst``."""

    def __init__(self, now: float, *, rate: float = 4.0, burst: float = 8.0) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, now

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def error_frame(error: str, cid: str | None = None) -> dict[str, Any]:
    return {"kind": "error", "id": cid, "error": error}


def result_frame(cid: str | None, op: str, state: str, text: str) -> dict[str, Any]:
    """What a control caused: ``state`` is sent, working, done, failed or no answer."""
    return {"kind": "result", "id": cid, "op": op, "state": state, "text": text}
