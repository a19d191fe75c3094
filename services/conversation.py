"""The router's conversation, pure: events in, actions out, time passed in.

idle → listening (wake) → thinking (a transcript) → speaking (speech started) → idle
(speech ended); every state but idle has a deadline, so it never sticks. Movement words
become a ``movement/command`` (or ``movement/stop``) and a short confirmation to say;
anything else is a question for the LLM, whose answer (or :data:`FALLBACK`) is said.
:mod:`services.router` carries messages in and actions out.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tars_mqtt import Message

from . import topics as t
from .common import env_float, problems
from .text import clean

__all__ = ["FALLBACK", "MAX_HEARD", "MOVES", "STOP_WORDS", "Action", "AskLLM", "Conversation",
           "Publish", "RouterSettings", "event_from", "llm_reply", "parse_intent"]

log = logging.getLogger("tars.router")
FALLBACK = "Sorry, I cannot think right now. Please ask me again in a moment."
# (phrases, motion, confirmation), checked in order; "stop" words are checked first.
MOVES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("step forward", "walk forward", "go forward", "move forward"), "step_forward",
     "Stepping forward."),
    (("step back", "step backward", "walk back", "go back", "move back"), "step_backward",
     "Stepping back."),
    (("turn left",), "turn_left", "Turning left."),
    (("turn right",), "turn_right", "Turning right."),
    (("wave", "waving", "say hello", "say hi"), "wave", "Okay, waving."),
    (("bow", "take a bow"), "bow", "Bowing."),
    (("laugh",), "laugh", "Ha ha ha."),
    (("balance",), "balance", "Balancing."),
    (("reset", "stand up", "stand straight"), "reset", "Standing up straight."),
)
STOP_WORDS = ("stop", "halt", "freeze")
MAX_HEARD = 2000  # characters of one transcript; longer ones are refused as malformed


def parse_intent(text: str) -> tuple[str, str | None, str | None]:
    """``("stop", None, said)``, ``("move", motion, said)`` or ``("chat", None, None)``."""
    padded = " " + " ".join(re.findall(r"[a-z']+", text.lower())) + " "
    if any(f" {word} " in padded for word in STOP_WORDS):
        return "stop", None, "Stopping."
    for phrases, motion, said in MOVES:
        if any(f" {phrase} " in padded for phrase in phrases):
            return "move", motion, said
    return "chat", None, None


@dataclass(frozen=True)
class Publish:
    """Publish ``data`` on ``spec``'s topic (with its event type, QoS and retain flag)."""

    spec: t.TopicSpec
    data: dict[str, Any]


@dataclass(frozen=True)
class AskLLM:
    """Ask the LLM ``text``; feed its reply back as ``("answer", turn, reply | None)``."""

    text: str
    turn: int


Action = Publish | AskLLM


@dataclass(frozen=True)
class RouterSettings:
    """Seconds: ``TARS_ROUTER_LLM_TIMEOUT`` (8), ``TARS_ROUTER_LISTEN_TIMEOUT`` (10),
    ``TARS_ROUTER_THINK_TIMEOUT`` (LLM timeout + 5), ``TARS_ROUTER_SPEAK_TIMEOUT`` (30)."""

    llm_timeout: float = 8.0
    listening: float = 10.0
    thinking: float = 13.0
    speaking: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RouterSettings:
        llm = env_float(environ, "TARS_ROUTER_LLM_TIMEOUT", 8.0, low=0.1, high=600)
        return cls(llm, env_float(environ, "TARS_ROUTER_LISTEN_TIMEOUT", 10.0, low=0.1),
                   env_float(environ, "TARS_ROUTER_THINK_TIMEOUT", llm + 5, low=llm),
                   env_float(environ, "TARS_ROUTER_SPEAK_TIMEOUT", 30.0, low=0.1))


class Conversation:
    """The pure state machine: ``handle(event, now)`` → actions; ``deadline`` for timeouts.

    Events are tuples: ``("wake", "wake"|"cancel")``, ``("heard", text)``,
    ``("tts", "speaking_start"|"speaking_end", utt_id|None)``, ``("answer", turn, reply|None)``
    and ``("timeout",)``.
    """

    def __init__(self, settings: RouterSettings = RouterSettings()) -> None:
        self.settings = settings
        self.state = "idle"
        self.deadline: float | None = None
        self.turn = 0  # which LLM answer is awaited
        self.utterance: str | None = None  # which tts/status events are ours
        self._utts = 0

    def start(self) -> list[Action]:
        return [Publish(t.SYSTEM_STATE, {"state": "idle"})]

    def handle(self, event: tuple[Any, ...], now: float) -> list[Action]:
        kind, out = event[0], list[Action]()
        if kind in ("wake", "heard"):
            self.turn += 1  # older LLM answers and utterances are stale from now on
            self.utterance = None
        if kind == "wake" and event[1] == "cancel":
            return [Publish(t.TTS_CONTROL, {"action": "stop"}), *self._go("idle", now, True)]
        if kind == "wake":
            if self.state == "speaking":
                out.append(Publish(t.TTS_CONTROL, {"action": "stop"}))
            return out + self._go("listening", now)
        if kind == "heard":
            out = self._go("thinking", now)
            intent, motion, said = parse_intent(event[1])
            if intent == "stop":
                out.append(Publish(t.MOVEMENT_STOP, {"reason": "voice"}))
            elif intent == "move":
                out.append(Publish(t.MOVEMENT_COMMAND, {"action": motion}))
            else:
                return [*out, AskLLM(event[1], self.turn)]
            return out + self._say(str(said))
        if kind == "answer" and event[1] == self.turn and self.state == "thinking":
            self.deadline = now + self.settings.thinking
            return self._say(event[2] or FALLBACK)
        if kind == "tts" and event[2] in (None, self.utterance):
            if event[1] == "speaking_start" and self.state != "speaking":
                return self._go("speaking", now)
            if event[1] == "speaking_end" and self.state == "speaking":
                return self._go("idle", now)
        if kind == "timeout" and self.deadline is not None and now >= self.deadline:
            log.warning("%s timed out: back to idle", self.state)
            self.turn, self.utterance = self.turn + 1, None
            return self._go("idle", now)
        return []

    def _go(self, state: str, now: float, always: bool = False) -> list[Action]:
        changed = state != self.state
        self.state = state
        limits = {"listening": self.settings.listening, "thinking": self.settings.thinking,
                  "speaking": self.settings.speaking}
        self.deadline = now + limits[state] if state in limits else None
        return [Publish(t.SYSTEM_STATE, {"state": state})] if changed or always else []

    def _say(self, text: str) -> list[Action]:
        self._utts += 1
        self.utterance = f"r{self._utts}"
        return [Publish(t.TTS_SAY, {"text": text, "utt_id": self.utterance})]


def llm_reply(msg: Message) -> tuple[str | None, str | None]:
    """The sentence to say from an ``llm/response``, or None and why it cannot be said."""
    found = problems(msg, t.LLM_RESPONSE)
    if found:
        return None, "; ".join(found)
    if msg.data.get("error") or not msg.data["reply"].strip():
        return None, f"the LLM answered with an error: {clean(msg.data.get('error') or 'empty')}"
    return msg.data["reply"], None


def event_from(msg: Message) -> tuple[tuple[Any, ...] | None, str | None]:
    """The machine's event for a message, or None and why it is malformed."""
    spec = t.spec_for(msg.topic)
    found = problems(msg, spec)
    if found:
        return None, "; ".join(found)
    data = msg.data
    if spec is t.WAKE_EVENT:
        return ("wake", data["type"]), None
    if spec is t.STT_FINAL:
        if len(data["text"]) > MAX_HEARD:  # no one says that much at once; it would stall
            return None, f"stt/final: text of {len(data['text'])} characters (at most {MAX_HEARD})"
        return (("heard", data["text"]), None) if data["text"].strip() else (None, "empty text")
    return ("tts", data["event"], data.get("utt_id")), None
