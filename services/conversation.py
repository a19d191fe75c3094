"""The router's conversation, pure: events in, actions out, time passed in.

idle → listening (wake) → thinking (a transcript) → speaking (speech started) → idle
(the last sentence ended); every state but idle has a deadline, so it never sticks.
Movement words become a ``movement/command`` (or ``movement/stop``) and a short
confirmation to say; anything else is a question for the LLM, whose answer is said
sentence by sentence as it streams in (:mod:`services.conversation_answer`), or
:data:`FALLBACK` when none comes. A wake, cancel or new question while an answer is still
coming sends ``llm/cancel``. The last few exchanges of a session go with each question.
:mod:`services.router` carries messages in and actions out.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from tars_mqtt import Message

from . import topics as t
from .common import Tally, problems
from .conversation_answer import SpokenAnswer
from .router_settings import RouterSettings
from .text import clean

__all__ = ["FALLBACK", "MAX_HEARD", "MOVES", "STOP_WORDS", "Action", "AskLLM", "Conversation",
           "Publish", "RouterSettings", "event_from", "llm_reply", "parse_intent", "stuck"]

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
    """Ask the LLM ``text``; feed its pieces back as ``("delta", turn, seq, piece)`` and
    its reply as ``("answer", turn, reply | None, action | None)``."""

    text: str
    turn: int
    session: str = "router-1"
    history: tuple[dict[str, str], ...] = ()

    def data(self) -> dict[str, Any]:
        """The ``llm/request`` data."""
        data: dict[str, Any] = {"text": self.text, "turn": self.turn, "session": self.session}
        if self.history:
            data["history"] = list(self.history)
        return data


Action = Publish | AskLLM


def stuck(now: float, busy_since: float | None, deadline: float | None,
          after: float) -> str | None:
    """Why a loop is stuck: on one event since ``busy_since``, or past ``deadline``, for
    longer than ``after`` seconds; None while it keeps up."""
    if busy_since is not None and now - busy_since > after:
        return f"the conversation loop has been on one event for {now - busy_since:.0f} s"
    if deadline is not None and now - deadline > after:
        return f"the conversation loop missed a deadline by {now - deadline:.0f} s"
    return None


class Conversation:
    """The pure state machine: ``handle(event, now)`` → actions; ``deadline`` for timeouts.

    Events are tuples: ``("wake", "wake"|"cancel")``, ``("heard", text)``,
    ``("tts", "speaking_start"|"speaking_end", utt_id|None)``, ``("delta", turn, seq,
    piece)``, ``("answer", turn, reply|None[, action|None])`` and ``("timeout",)``.
    """

    def __init__(self, settings: RouterSettings | None = None, *,
                 tally: Tally | None = None) -> None:
        self.settings = settings or RouterSettings()
        self.tally = tally or Tally()  # pieces it ignored: ``late_pieces``, ``stale_pieces``
        self.state = "idle"
        self.deadline: float | None = None
        self.turn = 0  # which LLM answer is awaited
        self.answer: SpokenAnswer | None = None  # the LLM answer being said, if any
        self.history: list[dict[str, str]] = []
        self.session, self._sessions, self._asked_at = "router-0", 0, -1e18
        self._ours: list[str] = []  # this turn's utterances; ``_pending`` not yet ended
        self._pending: list[str] = []
        self._utts = 0

    def start(self) -> list[Action]:
        return [Publish(t.SYSTEM_STATE, {"state": "idle"})]

    def handle(self, event: tuple[Any, ...], now: float) -> list[Action]:
        kind, out = event[0], list[Action]()
        if kind in ("wake", "heard"):
            out = self._new_turn()
        if kind == "wake" and event[1] == "cancel":
            return [*out, Publish(t.TTS_CONTROL, {"action": "stop"}), *self._go("idle", now, True)]
        if kind == "wake":
            if self.state == "speaking":
                out.append(Publish(t.TTS_CONTROL, {"action": "stop"}))
            return out + self._go("listening", now)
        if kind == "heard":
            out += self._go("thinking", now)
            intent, motion, said = parse_intent(event[1])
            if intent == "stop":
                out.append(Publish(t.MOVEMENT_STOP, {"reason": "voice"}))
            elif intent == "move":
                out.append(Publish(t.MOVEMENT_COMMAND, {"action": motion}))
            else:
                return [*out, self._ask(event[1], now)]
            return out + self._say(str(said))
        answer = self.answer
        if kind == "delta":
            return self._piece(event[1], event[2], event[3], now)
        if kind == "answer" and answer is not None and event[1] == answer.turn \
                and not answer.done:
            reply, action = event[2], event[3] if len(event) > 3 else None
            words = answer.finish(reply)
            if reply is not None:
                self._remember(answer.text)
            if not answer.sentences:  # nothing came, or nothing sayable
                words = [FALLBACK]
            out = self._motion(action) + self._said(words, now)
            return out + self._finished(now)
        if kind == "tts" and (event[2] is None or event[2] in self._ours):
            return self._speech(event[1], event[2], now)
        if kind == "timeout" and self.deadline is not None and now >= self.deadline:
            log.warning("%s timed out: back to idle", self.state)
            return self._new_turn() + self._go("idle", now)
        return []

    def _piece(self, turn: int, seq: int, piece: str, now: float) -> list[Action]:
        """A streamed piece: said if it is of the answer still coming. QoS 0 pieces travel
        apart from the QoS 1 reply, so one may come after it: never said twice."""
        answer = self.answer
        if answer is None or turn != answer.turn:
            self.tally.add("stale_pieces")  # of an answer no longer awaited
            return []
        if answer.done:
            self.tally.add("late_pieces")  # the whole reply came first and was said
            return []
        return self._said(answer.delta(seq, piece), now)

    def _new_turn(self) -> list[Action]:
        """Older answers and utterances are stale from now on; one still coming is stopped."""
        self.turn += 1
        self._ours, self._pending = [], []
        answer, self.answer = self.answer, None
        if answer is not None and not answer.done:
            return [Publish(t.LLM_CANCEL, {"session": self.session})]
        return []

    def _ask(self, text: str, now: float) -> AskLLM:
        if now - self._asked_at > self.settings.session_gap:
            self._sessions += 1
            self.session, self.history = f"router-{self._sessions}", []
        self._asked_at = now
        self.answer = SpokenAnswer(self.turn)
        self.history.append({"role": "user", "content": text})
        return AskLLM(text, self.turn, self.session, tuple(self.history[:-1]))

    def _remember(self, reply: str) -> None:
        if reply.strip():
            self.history.append({"role": "assistant", "content": reply.strip()})
        del self.history[:max(0, len(self.history) - self.settings.history)]

    def _motion(self, action: Any) -> list[Action]:
        """The movement an answer hands over, if it is one the router knows."""
        if action == "stop":
            return [Publish(t.MOVEMENT_STOP, {"reason": "voice"})]
        if action in {motion for _, motion, _ in MOVES}:
            return [Publish(t.MOVEMENT_COMMAND, {"action": action})]
        return []

    def _said(self, sentences: list[str], now: float) -> list[Action]:
        out = [a for text in sentences for a in self._say(text)]
        if out and self.state == "speaking":
            self.deadline = now + self.settings.speaking
        return out

    def _finished(self, now: float) -> list[Action]:
        """The answer is complete: idle once its speech has ended (or if there was none)."""
        if self.state == "speaking" and not self._pending:
            return self._go("idle", now)
        return []

    def _speech(self, what: str, utt: str | None, now: float) -> list[Action]:
        if what == "speaking_start" and self.state != "speaking":
            return self._go("speaking", now)
        if what == "speaking_end" and self.state == "speaking":
            if utt in self._pending:
                self._pending.remove(utt)
            elif utt is None and self._pending:
                self._pending.pop(0)
            if not self._pending and (self.answer is None or self.answer.done):
                return self._go("idle", now)
            self.deadline = now + self.settings.speaking
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
        utt = f"r{self._utts}"
        self._ours.append(utt)
        self._pending.append(utt)
        return [Publish(t.TTS_SAY, {"text": text, "utt_id": utt})]


def llm_reply(msg: Message) -> tuple[str | None, str | None, str | None]:
    """``(reply, action, None)`` from an ``llm/response``, or ``(None, None, why)`` when it
    cannot be said (off the table, an ``error``); the fallback is said then."""
    found = problems(msg, t.LLM_RESPONSE)
    if found:
        return None, None, "; ".join(found)
    if msg.data.get("error"):
        return None, None, f"the LLM answered with an error: {clean(msg.data['error'])}"
    return msg.data["reply"], msg.data.get("action"), None


def event_from(msg: Message) -> tuple[tuple[Any, ...] | None, str | None]:
    """The machine's event for a message, or None and why it is malformed."""
    spec = t.spec_for(msg.topic)
    found = problems(msg, spec)
    if found:
        return None, "; ".join(found)
    data = msg.data
    if spec is t.LLM_STREAM:
        turn = data.get("turn")
        if not isinstance(turn, int) or isinstance(turn, bool):
            return None, "llm/stream: a piece without its turn"
        return ("delta", turn, data["seq"], data["delta"]), None
    if spec is t.WAKE_EVENT:
        return ("wake", data["type"]), None
    if spec is t.STT_FINAL:
        if len(data["text"]) > MAX_HEARD:  # no one says that much at once; it would stall
            return None, f"stt/final: text of {len(data['text'])} characters (at most {MAX_HEARD})"
        return (("heard", data["text"]), None) if data["text"].strip() else (None, "empty text")
    return ("tts", data["event"], data.get("utt_id")), None
