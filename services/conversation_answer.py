"""An LLM answer said as it is written, pure: text pieces in, whole sentences out.

The router speaks each sentence as soon as it is complete (one ``tts/say`` each), so the
first words come long before the whole answer. Pieces travel at QoS 0: a gap in their
``seq`` stops the streaming, and the final answer (QoS 1, the whole text) supplies what is
left unsaid, so a lost piece costs latency, never words.
"""

from __future__ import annotations

__all__ = ["SpokenAnswer", "split_sentences"]

_ENDS = ".!?"
_CLOSERS = "\"')]»”’"


def split_sentences(text: str) -> tuple[list[str], str]:
    """``(complete sentences, the unfinished rest)``: a sentence ends at ``.``, ``!`` or
    ``?`` (and closing quotes) followed by white space, or at a line break; "3.5" does not."""
    sentences, start, i = [], 0, 0
    while i < len(text):
        c = text[i]
        end = None
        if c == "\n":
            end = i + 1
        elif c in _ENDS:
            j = i + 1
            while j < len(text) and (text[j] in _ENDS or text[j] in _CLOSERS):
                j += 1
            if j < len(text) and text[j].isspace():
                end = j
            i = j - 1
        if end is not None:
            if text[start:end].strip():
                sentences.append(text[start:end].strip())
            start = end
        i += 1
    return sentences, text[start:]


class SpokenAnswer:
    """The answer to one question (``turn``): what came, what was said of it."""

    def __init__(self, turn: int) -> None:
        self.turn = turn
        self.text = ""  # the pieces so far, or the whole reply once finished
        self.said = 0  # characters of ``text`` already handed to speech
        self.sentences = 0
        self.done = False
        self._seq = 0
        self._gap = False

    def delta(self, seq: int, piece: str) -> list[str]:
        """The sentences that ``piece`` completes (none after a gap or the end)."""
        if self.done or self._gap:
            return []
        if seq != self._seq:
            self._gap = True  # a piece was lost: wait for the whole reply
            return []
        self._seq += 1
        self.text += piece
        return self._take(final=False)

    def finish(self, reply: str | None) -> list[str]:
        """What is left to say of the whole ``reply`` (None: it failed; keep what was said)."""
        self.done = True
        if reply is None:
            return []
        if self.said and not reply.startswith(self.text[:self.said]):
            return []  # it differs from what was already said: say nothing twice
        self.text = reply
        return self._take(final=True)

    def _take(self, final: bool) -> list[str]:
        rest = self.text[self.said:]
        sentences, tail = split_sentences(rest)
        if final and tail.strip():
            sentences.append(tail.strip())
            tail = ""
        self.said += len(rest) - len(tail)
        self.sentences += len(sentences)
        return sentences
