"""What the page shows, folded from the bus (pure): health, the robot now, the conversation.

:class:`RobotView` takes every message the service sees and returns the frames that
changed; ``snapshot()`` is the whole picture for a page that just connected (or fell
behind). Health is judged by :class:`tars_mqtt.health.HealthBook`, the rules of
``tars-mqtt health``. A message that does not fit the topic table changes nothing here; it
is counted, and the traffic log shows it with the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import ujson

from tars_mqtt import Message
from tars_mqtt.health import HealthBook, Row, age

from .. import topics as t
from ..common import Tally, problems
from .rates import Rates
from .transcript import Transcript

__all__ = ["Robot", "RobotView", "health_frame", "traffic_frame"]

MAX_BODY = 600
MAX_DECODED = 64 * 1024  # bigger payloads are not re-encoded for the log, only sized
_CLIP = {"topic": 200, "type": 80, "source": 80, "correlate": 64, "client": 64, "state": 32,
         "status": 200}


@dataclass
class Robot:
    """The robot now: state, the running motion, last status, servo angles, speech."""

    state: str | None = None
    motion: str | None = None
    last: dict[str, str] | None = None
    angles: dict[str, float] = field(default_factory=dict)
    speaking: bool = False
    heard: str | None = None  # the last stt/partial, while someone speaks

    def frame(self) -> dict[str, Any]:
        return {"kind": "robot", "robot": asdict(self)}


class RobotView:
    """The folded state; feed it from one place (the service's loop), in arrival order."""

    def __init__(self, now: float, *, stale_after: float = 15.0) -> None:
        self.health = HealthBook(stale_after, now)
        self.robot = Robot()
        self.transcript = Transcript()
        self.rates = Rates(now)
        self.tally = Tally()
        self.seen = 0

    def add(self, msg: Message, now: float) -> list[dict[str, Any]]:
        """Fold ``msg`` in; the frames that changed (robot, conversation)."""
        self.seen += 1
        self.rates.add(clip(msg.topic, "topic"))
        if msg.topic.startswith(("system/health/", "system/keepalive/")):
            self.health.add(msg, now)
            return []
        data = msg.data if msg.envelope is not None and isinstance(msg.data, dict) else None
        if data is None or fit_problems(msg):
            if _watched(msg.topic):
                self.tally.add("malformed")
            return []
        env = msg.envelope
        assert env is not None
        entry = self.transcript.add(msg.topic, data, env.ts, msg.correlate)
        if entry is not None:
            return [entry.frame()]
        return [self.robot.frame()] if self._robot(msg.topic, data) else []

    def _robot(self, topic: str, data: dict[str, Any]) -> bool:
        robot = self.robot
        if topic == t.SYSTEM_STATE.name:
            robot.state = data["state"]
            robot.speaking = robot.speaking and robot.state != "idle"
        elif topic == t.MOVEMENT_STATUS.name:
            event, action = data["event"], clip(data["action"], "type")
            robot.last = {"event": event, "action": action,
                          "error": clip(str(data.get("error", "")), "status")}
            if event == "started":
                robot.motion = action
            elif event in ("completed", "stopped", "failed"):
                robot.motion = None
            angles = data.get("angles")
            if isinstance(angles, dict):
                robot.angles = {clip(str(k), "type"): float(v) for k, v in list(angles.items())[:8]
                                if isinstance(v, int | float) and not isinstance(v, bool)
                                and math.isfinite(v)}
        elif topic == t.TTS_STATUS.name:
            robot.speaking = data["event"] == "speaking_start"
        elif topic == "stt/partial" and isinstance(data.get("text"), str):
            robot.heard = clip(data["text"], "status")
        else:
            return False
        return True

    def tick(self, now: float, wall_now: float) -> list[dict[str, Any]]:
        """Once a second: health with fresh ages, and the closed rate bucket."""
        return [health_frame(self.health.rows(now, wall_now)),
                {"kind": "rates", **self.rates.tick(now, wall_now)}]

    def snapshot(self, now: float, wall_now: float) -> dict[str, Any]:
        return {"health": health_frame(self.health.rows(now, wall_now))["rows"],
                "robot": asdict(self.robot), "conversation": self.transcript.entries(),
                "rates": self.rates.history()}


def fit_problems(msg: Message) -> list[str]:
    """Why ``msg`` does not fit its row of the topic table (empty for unknown topics)."""
    try:
        spec = t.spec_for(msg.topic)
    except KeyError:
        return []
    return problems(msg, spec)


def _watched(topic: str) -> bool:
    return topic in {s.name for s in t.TABLE}


def clip(text: str, what: str) -> str:
    limit = _CLIP[what]
    return text if len(text) <= limit else text[:limit - 1] + "…"


def health_frame(rows: list[Row]) -> dict[str, Any]:
    return {"kind": "health", "rows": [
        {"client": clip(r.client, "client"), "state": clip(r.event, "state"), "ok": r.ok,
         "healthy": r.healthy, "stale": r.stale, "waiting": r.waiting,
         "status": clip(r.status, "status"), "beat": age(r.beat_age),
         "beat_age": None if r.beat_age is None else round(r.beat_age, 2),
         "health_age": age(r.health_age)} for r in rows]}


def traffic_frame(msg: Message, wall_now: float) -> dict[str, Any]:
    """One line of the traffic log: the decoded envelope, its body clipped, what is wrong."""
    env = msg.envelope
    size = len(msg.payload)
    if size > MAX_DECODED:
        body = f"({size} bytes, not shown)"
    elif env is not None:
        body = ujson.dumps(env.data, ensure_ascii=False, escape_forward_slashes=False)
    else:
        body = msg.payload[:MAX_BODY * 4].decode("utf-8", "replace")
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + f"… ({size} bytes)"
    wrong = msg.decode_error or "; ".join(fit_problems(msg)) or None
    ts = env.ts if env is not None and math.isfinite(env.ts) else wall_now
    return {"kind": "msg", "topic": clip(msg.topic, "topic"), "qos": msg.qos,
            "retain": msg.retain, "ts": round(ts, 3),
            "type": clip(env.type, "type") if env else None,
            "source": clip(env.source, "source") if env else None,
            "correlate": clip(msg.correlate, "correlate") if msg.correlate else None,
            "body": body, "error": clip(wrong, "status") if wrong else None, "size": size}
