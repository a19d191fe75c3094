"""The robot's topic table (CONTRACT.md §6) in one place.

Services take topic names, QoS and retain flags from here, and tests check that every
service publishes and subscribes only what this table says, with payloads of these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "LLM_REQUEST", "LLM_RESPONSE", "MOVEMENT_COMMAND", "MOVEMENT_STATUS", "MOVEMENT_STOP",
    "STT_FINAL", "STT_PARTIAL", "SYSTEM_STATE", "TABLE", "TTS_CONTROL", "TTS_SAY", "TTS_STATUS",
    "WAKE_EVENT", "WAKE_SIMULATE", "TopicSpec", "check_payload", "spec_for",
]


@dataclass(frozen=True)
class TopicSpec:
    """One row: who talks on ``name``, how, and what the envelope ``data`` holds.

    ``fields`` maps each data field to its type(s); names in ``optional`` may be absent.
    ``values`` restricts a field to a set of strings.
    """

    name: str
    qos: int
    retain: bool
    event_type: str
    publishers: frozenset[str]
    subscribers: frozenset[str]
    fields: dict[str, tuple[type, ...]]
    optional: frozenset[str] = frozenset()
    values: dict[str, frozenset[str]] = field(default_factory=dict)


def _spec(name: str, qos: int, event_type: str, pub: str, sub: str,
          fields: dict[str, tuple[type, ...]], optional: str = "", retain: bool = False,
          values: dict[str, frozenset[str]] | None = None) -> TopicSpec:
    return TopicSpec(name, qos, retain, event_type, frozenset(pub.split()),
                     frozenset(sub.split()), fields, frozenset(optional.split()), values or {})


_NUM = (int, float)
_STATUS_EVENTS = frozenset({"started", "completed", "failed", "rejected", "stopped", "busy"})
_STATES = frozenset({"idle", "listening", "thinking", "speaking", "moving"})

WAKE_EVENT = _spec("wake/event", 1, "wake.event", "wake tools", "router",
                   {"type": (str,), "source": (str,), "confidence": _NUM}, "confidence",
                   values={"type": frozenset({"wake", "cancel"})})
# Only with TARS_WAKE_SIMULATE=1 on mock pins: the wake service drives its own mock button.
WAKE_SIMULATE = _spec("wake/simulate", 1, "wake.simulate", "demo tools", "wake",
                      {"action": (str,)}, values={"action": frozenset({"press", "hold"})})
MOVEMENT_COMMAND = _spec("movement/command", 1, "movement.command", "router tools", "movement",
                         {"action": (str,), "params": (dict,), "speed": _NUM}, "params speed")
MOVEMENT_STOP = _spec("movement/stop", 1, "movement.stop", "router tools", "movement",
                      {"reason": (str,)}, "reason")
MOVEMENT_STATUS = _spec("movement/status", 1, "movement.status", "movement", "router tools",
                        {"event": (str,), "action": (str,), "error": (str,), "angles": (dict,)},
                        "error angles", values={"event": _STATUS_EVENTS})
STT_PARTIAL = _spec("stt/partial", 0, "stt.partial", "stt", "tools", {"text": (str,)})
STT_FINAL = _spec("stt/final", 1, "stt.final", "stt", "router",
                  {"text": (str,), "lang": (str,), "confidence": _NUM}, "lang confidence")
TTS_SAY = _spec("tts/say", 1, "tts.say", "router tools", "tts",
                {"text": (str,), "utt_id": (str,), "voice": (str,), "rate": _NUM},
                "utt_id voice rate")
TTS_STATUS = _spec("tts/status", 0, "tts.status", "tts", "router stt wake",
                   {"event": (str,), "utt_id": (str,)}, "utt_id",
                   values={"event": frozenset({"speaking_start", "speaking_end", "paused",
                                               "resumed", "stopped"})})
TTS_CONTROL = _spec("tts/control", 1, "tts.control", "router tools", "tts",
                    {"action": (str,)}, values={"action": frozenset({"stop", "pause", "resume",
                                                                     "mute", "unmute"})})
LLM_REQUEST = _spec("llm/request", 1, "llm.request", "router", "llm", {"text": (str,)})
LLM_RESPONSE = _spec("llm/response", 1, "llm.response", "llm", "router",
                     {"reply": (str,), "error": (str,)}, "error")
SYSTEM_STATE = _spec("system/state", 1, "system.state", "router", "wake tools",
                     {"state": (str,)}, retain=True, values={"state": _STATES})

TABLE: tuple[TopicSpec, ...] = (
    WAKE_EVENT, MOVEMENT_COMMAND, MOVEMENT_STOP, MOVEMENT_STATUS, STT_PARTIAL, STT_FINAL,
    TTS_SAY, TTS_STATUS, TTS_CONTROL, LLM_REQUEST, LLM_RESPONSE, SYSTEM_STATE, WAKE_SIMULATE,
)


def spec_for(topic: str) -> TopicSpec:
    for spec in TABLE:
        if spec.name == topic:
            return spec
    raise KeyError(f"{topic!r} is not in the robot's topic table")


def check_payload(spec: TopicSpec, data: Any) -> list[str]:
    """Problems with ``data`` for ``spec`` (empty when it fits the table)."""
    if not isinstance(data, dict):
        return [f"{spec.name}: data must be an object, got {type(data).__name__}"]
    problems = []
    for name, kinds in spec.fields.items():
        if name not in data:
            if name not in spec.optional:
                problems.append(f"{spec.name}: missing field {name!r}")
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, kinds):
            problems.append(f"{spec.name}: field {name!r} has type {type(value).__name__}")
        elif name in spec.values and value not in spec.values[name]:
            problems.append(f"{spec.name}: field {name!r} = {value!r} is not one of"
                            f" {sorted(spec.values[name])}")
    return problems
