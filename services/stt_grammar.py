"""The recogniser's command grammar, built from the router's intents, and the choice
between a command the grammar heard and what free dictation heard.

Every phrase :func:`services.conversation.parse_intent` acts on (the movement phrases and
the stop words) becomes an alternative of one JSGF rule, with an optional "please" or
"tars" around it. Words the pronouncing dictionary lacks are added from
:data:`EXTRA_WORDS`, or dropped with the phrases that need them (and reported).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .conversation import MOVES, STOP_WORDS, parse_intent

__all__ = ["EXTRA_WORDS", "FLOOR", "MODES", "Grammar", "Heard", "build_grammar", "choose",
           "command_phrases"]

MODES = ("both", "commands", "dictation")
# The grammar's score (per frame, 0..1) below which its command is not believed. Over the
# command set and 12 questions spoken by five espeak-ng voices at three rates
# (bench/speech.py), right commands scored 0.48..0.82 and questions forced onto the
# grammar 0.33..0.62: 0.58 kept 82 % of the commands and took 6 % of the questions for
# commands; 0.55 kept 89 % and took 16 %. A question taken for a command moves the robot.
FLOOR = 0.58
EXTRA_WORDS = {"tars": "T AA R Z"}  # pronunciations the stock dictionary lacks
POLITE = ("please", "tars")


@dataclass(frozen=True)
class Heard:
    """One recognition: the words and the engine's score for them (0..1, higher = surer)."""

    text: str
    score: float


@dataclass(frozen=True)
class Grammar:
    """The JSGF text, the phrases it holds, and the phrases left out (unknown words)."""

    jsgf: str
    phrases: tuple[str, ...]
    missing: tuple[str, ...]
    extra_words: dict[str, str]

    def complete(self, text: str) -> bool:
        """Whether ``text`` is a whole sentence of the grammar (not a path cut short)."""
        words = text.split()
        while words and words[0] in POLITE:
            words = words[1:]
        while words and words[-1] in POLITE:
            words = words[:-1]
        return " ".join(words) in self.phrases


def command_phrases() -> tuple[str, ...]:
    """Every phrase the router turns into a motion or a stop, sorted, no duplicates."""
    found = {p for phrases, _, _ in MOVES for p in phrases} | set(STOP_WORDS)
    return tuple(sorted(found))


def build_grammar(lookup: Callable[[str], str | None],
                  phrases: Iterable[str] | None = None) -> Grammar:
    """The grammar for ``phrases`` (default: the router's), given the dictionary ``lookup``."""
    kept, missing, extra = [], [], {}
    for phrase in phrases if phrases is not None else command_phrases():
        words = phrase.lower().split()
        if not words or not all(re.fullmatch(r"[a-z']+", w) for w in words):
            missing.append(phrase)
            continue
        unknown = [w for w in words if lookup(w) is None and w not in EXTRA_WORDS]
        if unknown:
            missing.append(phrase)
            continue
        extra.update({w: EXTRA_WORDS[w] for w in words if lookup(w) is None})
        kept.append(" ".join(words))
    polite = [w for w in POLITE if lookup(w) is not None or w in EXTRA_WORDS]
    extra.update({w: EXTRA_WORDS[w] for w in polite if lookup(w) is None})
    if not kept:
        raise ValueError("no command phrase has words the dictionary knows")
    around = f"[{' | '.join(polite)}]" if polite else ""
    jsgf = ("#JSGF V1.0;\ngrammar tars;\n"
            f"public <command> = {around} ( {' | '.join(kept)} ) {around};\n")
    return Grammar(jsgf, tuple(kept), tuple(missing), extra)


def choose(command: Heard | None, dictation: Heard | None, *, mode: str = "both",
           floor: float = FLOOR, margin: float = 1.0) -> Heard | None:
    """What was said: the grammar's command, or free dictation, or None (nothing usable).

    The grammar always finds *some* command, even in "what is the weather"; in mode
    ``both`` its command wins only when it is a whole command, scores at least ``floor``
    and at least ``margin`` times what dictation scored on the same audio.
    ``commands`` trusts the grammar whenever it found a whole command; ``dictation``
    never asks it.
    """
    whole = command is not None and mode != "dictation" \
        and parse_intent(command.text)[0] != "chat"
    if whole and command is not None:
        unopposed = mode == "commands" or dictation is None or not dictation.text
        if unopposed or (command.score >= floor
                         and command.score >= margin * (dictation.score if dictation else 0)):
            return command
    if dictation is not None and dictation.text.strip():
        return dictation
    return None
