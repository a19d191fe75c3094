"""The robot's topic table in one place: every topic, who talks on it, how, and what it carries.

Services take topic names, QoS and retain flags from here, and tests check that every
service publishes and subscribes only what this table says, with payloads of these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .text import shown, value_problem

__all__ = [
    "CHARACTER_CURRENT", "CHARACTER_GET", "CHARACTER_RESULT", "CHARACTER_UPDATE", "LLM_CANCEL",
    "LLM_REQUEST", "LLM_RESPONSE", "LLM_STREAM", "MEMORY_QUERY", "MEMORY_RESULTS",
    "MOVEMENT_COMMAND", "MOVEMENT_STATUS", "MOVEMENT_STOP", "STT_FINAL", "SYSTEM_STATE", "TABLE",
    "TTS_CONTROL", "TTS_SAY", "TTS_STATUS", "WAKE_EVENT", "WAKE_SIMULATE", "TopicSpec",
    "check_payload", "spec_for",
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

WAKE_EVENT = _spec("wake/event", 1, "wake.event", "wake tools ui", "router",
                   {"type": (str,), "source": (str,), "confidence": _NUM}, "confidence",
                   values={"type": frozenset({"wake", "cancel"})})
# Only with TARS_WAKE_SIMULATE=1 on mock pins: the wake service drives its own mock button.
WAKE_SIMULATE = _spec("wake/simulate", 1, "wake.simulate", "demo tools", "wake",
                      {"action": (str,)}, values={"action": frozenset({"press", "hold"})})
MOVEMENT_COMMAND = _spec("movement/command", 1, "movement.command", "router tools ui",
                         "movement",
                         {"action": (str,), "params": (dict,), "speed": _NUM}, "params speed")
MOVEMENT_STOP = _spec("movement/stop", 1, "movement.stop", "router tools ui", "movement",
                      {"reason": (str,)}, "reason")
MOVEMENT_STATUS = _spec("movement/status", 1, "movement.status", "movement", "router tools ui",
                        {"event": (str,), "action": (str,), "error": (str,), "angles": (dict,)},
                        "error angles", values={"event": _STATUS_EVENTS})
STT_PARTIAL = _spec("stt/partial", 0, "stt.partial", "stt", "tools", {"text": (str,)})
STT_FINAL = _spec("stt/final", 1, "stt.final", "stt", "router memory",
                  {"text": (str,), "lang": (str,), "confidence": _NUM}, "lang confidence")
TTS_SAY = _spec("tts/say", 1, "tts.say", "router tools ui", "tts memory ui",
                {"text": (str,), "utt_id": (str,), "voice": (str,), "rate": _NUM},
                "utt_id voice rate")
TTS_STATUS = _spec("tts/status", 0, "tts.status", "tts", "router stt wake ui",
                   {"event": (str,), "utt_id": (str,)}, "utt_id",
                   values={"event": frozenset({"speaking_start", "speaking_end", "paused",
                                               "resumed", "stopped"})})
TTS_CONTROL = _spec("tts/control", 1, "tts.control", "router tools", "tts",
                    {"action": (str,)}, values={"action": frozenset({"stop", "pause", "resume",
                                                                     "mute", "unmute"})})
# A question for tars-llm, sent as a request (reply topic llm/response). ``history`` is the
# conversation so far, ``[{role: "user"|"assistant", content}]``, oldest first; ``turn`` is
# the asker's own number for the question, echoed on every llm/stream piece of the answer.
LLM_REQUEST = _spec("llm/request", 1, "llm.request", "router", "llm",
                    {"text": (str,), "history": (list,), "session": (str,), "turn": (int,)},
                    "history session turn")
# The answer as it is written: ``delta`` is the next piece of text, ``seq`` counts the pieces
# of one answer from 0 (a gap shows a lost piece); ``correlate`` is the request's id.
LLM_STREAM = _spec("llm/stream", 0, "llm.stream", "llm", "router",
                   {"delta": (str,), "seq": (int,), "turn": (int,)}, "turn")
# The whole answer, once, correlated to the request. ``action`` (a motion or "stop") asks the
# router to carry out that movement intent; ``error`` says why there is no (whole) answer.
LLM_RESPONSE = _spec("llm/response", 1, "llm.response", "llm", "router",
                     {"reply": (str,), "error": (str,), "action": (str,)}, "error action")
# Stop answering request ``request`` (its envelope id) at once, or every request of
# ``session`` sent before this cancel (by the envelopes' ``ts``).
LLM_CANCEL = _spec("llm/cancel", 1, "llm.cancel", "router", "llm",
                   {"request": (str,), "session": (str,)}, "request session")
# What was said before that matches ``text``: up to ``k`` turns, best first (reply topic
# memory/results); each result is ``{text, role: "heard"|"said", ts, score, id, correlate?}``.
MEMORY_QUERY = _spec("memory/query", 1, "memory.query", "llm", "memory",
                     {"text": (str,), "k": (int,)}, "k")
MEMORY_RESULTS = _spec("memory/results", 1, "memory.results", "memory", "llm",
                       {"results": (list,), "error": (str,)}, "error")
_PERSONA: dict[str, tuple[type, ...]] = {
    "name": (str,), "description": (str,), "traits": (dict,), "voice": (dict,)}
CHARACTER_CURRENT = _spec("system/character/current", 1, "character.current", "memory", "llm",
                          _PERSONA, retain=True)
CHARACTER_GET = _spec("character/get", 1, "character.get", "tools", "memory", {})
CHARACTER_RESULT = _spec("character/result", 1, "character.result", "memory", "tools",
                         {**_PERSONA, "error": (str,)}, "name description traits voice error")
# Set one trait (0..100, e.g. humor) of the persona; it is kept across restarts.
CHARACTER_UPDATE = _spec("character/update", 1, "character.update", "tools", "memory",
                         {"trait": (str,), "value": _NUM})
SYSTEM_STATE = _spec("system/state", 1, "system.state", "router", "wake tools ui",
                     {"state": (str,)}, retain=True, values={"state": _STATES})

TABLE: tuple[TopicSpec, ...] = (
    WAKE_EVENT, MOVEMENT_COMMAND, MOVEMENT_STOP, MOVEMENT_STATUS, STT_FINAL, TTS_SAY,
    TTS_STATUS, TTS_CONTROL, LLM_REQUEST, LLM_RESPONSE, SYSTEM_STATE, WAKE_SIMULATE,
    LLM_STREAM, LLM_CANCEL, MEMORY_QUERY, MEMORY_RESULTS, CHARACTER_CURRENT, CHARACTER_GET,
    CHARACTER_RESULT, CHARACTER_UPDATE, STT_PARTIAL,
)


def spec_for(topic: str) -> TopicSpec:
    for spec in TABLE:
        if spec.name == topic:
            return spec
    raise KeyError(f"{topic!r} is not in the robot's topic table")


def check_payload(spec: TopicSpec, data: Any) -> list[str]:
    """Problems with ``data`` for ``spec`` (empty when it fits the table); never raises.

    Beyond the table's types: no number anywhere in ``data`` may be non-finite or too
    large for a float, and no text may be unencodable (what strict JSON peers refuse).
    """
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
            problems.append(f"{spec.name}: field {name!r} = {shown(value)} is not one of"
                            f" {sorted(spec.values[name])}")
    found = value_problem(data)
    if found:
        problems.append(f"{spec.name}: {found}")
    return problems
