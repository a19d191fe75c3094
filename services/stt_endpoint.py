"""When someone is speaking, pure: voice-activity frames in, utterances out; and the mute.

:class:`Endpointer` turns a stream of fixed-size frames, each already classified as
speech or not, into utterances: speech starts after ``start`` seconds of voiced frames
(with ``pre_roll`` seconds of audio before it kept, so the first consonant is not lost),
ends after ``end`` seconds of silence, and is cut at ``longest`` seconds.
:class:`MuteGate` says whether the robot itself is talking (from ``tts/status``), plus a
tail for the room's echo, so tars-stt never transcribes its own voice.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Endpointer", "EndpointSettings", "MuteGate", "Segment"]


@dataclass(frozen=True)
class EndpointSettings:
    """Seconds; ``frame`` is the length of each frame the classifier looked at."""

    frame: float = 0.03
    start: float = 0.09
    end: float = 0.6
    pre_roll: float = 0.3
    longest: float = 15.0


@dataclass
class Segment:
    """What one frame did: ``started`` an utterance, or ``ended`` one (its audio)."""

    started: bool = False
    ended: bytes | None = None
    speaking: bool = False


class Endpointer:
    """Feed frames with :meth:`feed`; it reports starts and hands back ended utterances."""

    def __init__(self, settings: EndpointSettings = EndpointSettings()) -> None:
        self.settings = settings
        n = max(1, round(settings.pre_roll / settings.frame))
        self._before: deque[tuple[bytes, bool]] = deque(maxlen=n)
        self._voiced_run = 0
        self._silent_run = 0
        self._utterance: list[bytes] | None = None

    @property
    def speaking(self) -> bool:
        return self._utterance is not None

    @property
    def heard(self) -> bytes:
        """The audio of the utterance so far (empty when nobody speaks)."""
        return b"".join(self._utterance or [])

    def feed(self, frame: bytes, voiced: bool) -> Segment:
        s = self.settings
        if self._utterance is None:
            self._before.append((frame, voiced))
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            if self._voiced_run * s.frame >= s.start - 1e-9:
                self._utterance = [f for f, _ in self._before]
                self._before.clear()
                self._silent_run = 0
                return Segment(started=True, speaking=True)
            return Segment()
        self._utterance.append(frame)
        self._silent_run = 0 if voiced else self._silent_run + 1
        long = len(self._utterance) * s.frame >= s.longest - 1e-9
        if self._silent_run * s.frame >= s.end - 1e-9 or long:
            return Segment(ended=self.flush())
        return Segment(speaking=True)

    def flush(self) -> bytes | None:
        """End the utterance now (the stream ended); its audio, or None if none was open."""
        audio, self._utterance = self._utterance, None
        self._voiced_run = self._silent_run = 0
        self._before.clear()
        return b"".join(audio) if audio is not None else None


class MuteGate:
    """Muted from ``speaking_start`` until ``tail`` seconds after ``speaking_end``.

    A lost ``speaking_end`` cannot deafen the robot: a mute lasts at most ``longest``.
    """

    def __init__(self, tail: float = 0.3, longest: float = 60.0) -> None:
        self.tail, self.longest = tail, longest
        self._since: float | None = None  # speaking since
        self._until = float("-inf")  # muted until (after the end)

    def status(self, event: str, now: float) -> None:
        if event in ("speaking_start", "resumed"):
            self._since = now if self._since is None else self._since
        elif event == "speaking_end":
            self._since = None
            self._until = now + self.tail

    def muted(self, now: float) -> bool:
        if self._since is not None:
            if now - self._since < self.longest:
                return True
            self._since = None  # the end never came
        return now < self._until
