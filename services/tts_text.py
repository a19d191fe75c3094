"""Text to speak, cut into sentences so the first one sounds while the rest is rendered."""

from __future__ import annotations

import re

__all__ = ["MAX_CHARS", "split_sentences"]

MAX_CHARS = 200  # a longer sentence is cut at a comma or a space: rendering stays short
_END = re.compile(r"(?<=[.!?;:])\s+")
_SOFT = re.compile(r"(?<=[,])\s+|\s+")


def split_sentences(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """The sentences of ``text``, in order, none longer than ``max_chars``; no empty ones.

    >>> split_sentences("Hello there. How are you?  Fine!")
    ['Hello there.', 'How are you?', 'Fine!']
    """
    out: list[str] = []
    for sentence in _END.split(" ".join(text.split())):
        out.extend(_cut(sentence, max_chars))
    return [s for s in out if any(c.isalnum() for c in s)]


def _cut(sentence: str, max_chars: int) -> list[str]:
    """``sentence`` in pieces of at most ``max_chars``, preferring commas, then spaces."""
    pieces = []
    while len(sentence) > max_chars:
        head = sentence[:max_chars + 1]
        commas = [m.end() for m in re.finditer(r",\s", head)]
        spaces = [m.start() for m in _SOFT.finditer(head)]
        at = commas[-1] if commas else (spaces[-1] if spaces else max_chars)
        at = at if at > 0 else max_chars
        pieces.append(sentence[:at].strip())
        sentence = sentence[at:].strip()
    pieces.append(sentence)
    return pieces
