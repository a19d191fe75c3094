"""The speaker's state, pure: utterances queued in order, and what each control does.

``idle`` → ``speaking`` (:meth:`SpeechQueue.begin`) → ``idle`` (:meth:`SpeechQueue.end`);
``pause`` and ``resume`` move between ``speaking`` and ``paused``; ``stop`` drops the
queued utterances and moves the current one to ``stopping`` until the player has cut
its sound and calls :meth:`SpeechQueue.end`. Every call returns the ``tts/status``
events to publish, so the thread that plays audio and the handlers that take messages
share one lock around one object and nothing else. Every ``speaking_start`` is closed by
exactly one ``speaking_end``, sent once the sound has ended (after ``stopped`` when a
stop cut it short).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["ACTIONS", "QueueFull", "SpeechQueue", "Status", "Utterance"]

ACTIONS = ("stop", "pause", "resume", "mute", "unmute")


@dataclass(frozen=True)
class Utterance:
    """One ``tts/say``: what to say, its id for the status events, how to say it."""

    utt_id: str
    text: str
    voice: str | None = None
    rate: float | None = None


@dataclass(frozen=True)
class Status:
    """One ``tts/status`` event."""

    event: str
    utt_id: str


class QueueFull(Exception):
    """Too many utterances are waiting; this one is refused."""


class SpeechQueue:
    """Queue and state of the speaker (not thread-safe: the caller holds one lock)."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self.state = "idle"  # idle | speaking | paused | stopping
        self.current: Utterance | None = None
        self.muted = False
        self.generation = 0  # bumped by stop: the player drops what it was playing
        self._waiting: deque[Utterance] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def say(self, utt: Utterance) -> None:
        """Queue ``utt`` behind the others; :class:`QueueFull` when ``limit`` are waiting."""
        if len(self._waiting) >= self.limit:
            raise QueueFull(f"{self.limit} utterances are already waiting")
        self._waiting.append(utt)

    def next(self) -> Utterance | None:
        """The utterance :meth:`begin` would start (rendered ahead, while still queued)."""
        return self._waiting[0] if self.current is None and self._waiting else None

    def begin(self, utt: Utterance | None = None) -> tuple[Utterance, list[Status]] | None:
        """Start the next utterance (only if it is ``utt``, when given); None otherwise."""
        if self.current is not None or not self._waiting or \
                (utt is not None and self._waiting[0] is not utt):
            return None
        self.current = self._waiting.popleft()
        self.state = "speaking"
        return self.current, [Status("speaking_start", self.current.utt_id)]

    def end(self, utt: Utterance) -> list[Status]:
        """The sound of ``utt`` has ended (played out, or cut by a stop)."""
        if self.current is not utt:
            return []
        self.current, self.state = None, "idle"
        return [Status("speaking_end", utt.utt_id)]

    def control(self, action: str) -> list[Status]:
        """Apply ``action`` (one of :data:`ACTIONS`); the events it causes."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        if action in ("mute", "unmute"):
            self.muted = action == "mute"
            return []
        if action == "pause" and self.state == "speaking" and self.current is not None:
            self.state = "paused"
            return [Status("paused", self.current.utt_id)]
        if action == "resume" and self.state == "paused" and self.current is not None:
            self.state = "speaking"
            return [Status("resumed", self.current.utt_id)]
        if action != "stop":
            return []
        out = [Status("stopped", utt.utt_id) for utt in self._waiting]
        self._waiting.clear()
        if self.current is not None and self.state != "stopping":
            out.append(Status("stopped", self.current.utt_id))
            self.state = "stopping"  # until the player has silenced it and calls end()
            self.generation += 1
        return out
