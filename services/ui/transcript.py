"""The conversation as the page shows it: what was heard, thought and said, in order (pure).

``stt/final`` is the person; ``llm/stream`` deltas grow one entry per request (keyed by
``correlate``) that ``llm/response`` completes; ``tts/say`` is what TARS says. Entries and
their text are bounded, whoever floods these topics.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Entry", "Transcript"]

MAX_TEXT = 2000
_DELTA_FIELDS = ("delta", "text", "token", "content")


@dataclass(eq=False)  # entries are compared by identity
class Entry:
    """One line of the conversation; ``streaming`` while an answer is still coming in."""

    id: int
    who: str  # heard | thought | said
    text: str
    ts: float
    streaming: bool = False
    error: bool = False

    def frame(self) -> dict[str, Any]:
        return {"kind": "conv", "entry": asdict(self)}


class Transcript:
    """The last ``size`` entries; ``add`` returns the entry it created or changed."""

    def __init__(self, size: int = 60) -> None:
        self._size = size
        self._entries: deque[Entry] = deque(maxlen=size)
        self._by_request: dict[str, Entry] = {}
        self._next = 1

    def add(self, topic: str, data: dict[str, Any], ts: float,
            correlate: str | None) -> Entry | None:
        """Fold one message (already checked to be an object); None if it adds nothing."""
        if topic == "stt/final" and isinstance(data.get("text"), str):
            return self._new("heard", data["text"], ts)
        if topic == "tts/say" and isinstance(data.get("text"), str):
            return self._new("said", data["text"], ts)
        if topic == "llm/stream":
            delta = next((data[k] for k in _DELTA_FIELDS if isinstance(data.get(k), str)), None)
            if delta is None:
                return None
            entry = self._open(correlate, ts)
            entry.text = (entry.text + delta)[:MAX_TEXT]
            return entry
        if topic == "llm/response":
            error, reply = data.get("error"), data.get("reply")
            entry = self._open(correlate, ts)
            entry.streaming = False
            if isinstance(error, str) and error:
                entry.text, entry.error = f"(no answer: {error})"[:MAX_TEXT], True
            elif isinstance(reply, str):
                entry.text = reply[:MAX_TEXT]
            if correlate is not None:
                self._by_request.pop(correlate, None)
            return entry
        return None

    def entries(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self._entries]

    def _open(self, correlate: str | None, ts: float) -> Entry:
        """The streaming entry of this request, or a new one."""
        entry = self._by_request.get(correlate) if correlate is not None else None
        if entry is None or entry not in self._entries:
            entry = self._new("thought", "", ts)
            entry.streaming = True
            if correlate is not None:
                self._by_request[correlate] = entry
                while len(self._by_request) > self._size:
                    del self._by_request[next(iter(self._by_request))]
        return entry

    def _new(self, who: str, text: str, ts: float) -> Entry:
        entry = Entry(self._next, who, text[:MAX_TEXT], ts)
        self._next += 1
        self._entries.append(entry)
        return entry
