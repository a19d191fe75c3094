"""The offline responder: useful answers with no language model configured, pure.

tars-llm answers with it when no endpoint is set (``TARS_LLM_URL`` empty). It knows the time
and date, the persona, what the robot can do, which services are up (from their retained
health), what was said before (the memory results), a joke in keeping with the humor
setting, and movement: "move", "walk", "wave", "stop" come back as an ``action`` that the
router carries out through its own intents (``services.conversation.parse_intent``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .conversation import parse_intent
from .persona import Persona

__all__ = ["CAPABILITIES", "NO_MODEL", "Facts", "Reply", "respond"]

CAPABILITIES = ("I can tell you the time and the date, who I am, which of my systems are"
                " running, and what we talked about. I can wave, bow, laugh, step forward or"
                " back, turn left or right, and stop.")
NO_MODEL = "I cannot look that up without my language model."
# Extra ways to ask for a motion that the router's own phrases do not cover.
_MORE_MOVES = ((("move", "walk", "come here", "go"), "step_forward", "Walking forward."),
               (("spin", "turn around"), "turn_left", "Turning."))
_JOKES = ("I have a cue light I can use to show you when I am joking, if you like.",
          "Why did the robot cross the road? It was programmed to. I was not.",
          "I would tell you a joke about UDP, but you might not get it.",
          "My humor setting is high enough to laugh at my own jokes. That is the problem.")


@dataclass(frozen=True)
class Facts:
    """What the responder may speak of; the caller gathers it."""

    now: datetime
    persona: Persona
    health: Mapping[str, bool] = field(default_factory=dict)  # client id -> ok
    memories: Sequence[Mapping[str, Any]] = ()  # memory/results, best first


@dataclass(frozen=True)
class Reply:
    """The sentence(s) to say and, for a movement request, the router intent to run."""

    text: str
    action: str | None = None


def respond(question: str, facts: Facts) -> Reply:
    """The answer to ``question`` (any text; never raises)."""
    words = " " + " ".join(re.findall(r"[a-z0-9']+", question.lower())) + " "

    def has(*phrases: str) -> bool:
        return any(f" {p} " in words for p in phrases)

    if has("remember", "earlier", "before", "last time", "did i say", "did i ask",
           "what did i", "did we", "talk about"):
        return Reply(_recall(question, facts.memories))
    if has("time") and not has("last time"):
        return Reply(f"It is {facts.now:%H:%M}.")
    if has("date", "day", "today"):
        return Reply(f"Today is {facts.now:%A}, {facts.now.day} {facts.now:%B %Y}.")
    trait = next((t for t in facts.persona.traits if has(t, t.replace("_", " "))), None)
    if trait is not None:
        return Reply(f"My {trait.replace('_', ' ')} setting is"
                     f" {facts.persona.traits[trait]} percent.")
    if has("name", "who are you", "what are you", "yourself"):
        about = f", {facts.persona.description}" if facts.persona.description else ""
        return Reply(f"I am {facts.persona.name}{about}.")
    if has("personality", "traits", "settings", "character"):
        return Reply(_traits(facts.persona))
    if has("what can you do", "help", "abilities", "skills", "commands"):
        return Reply(CAPABILITIES)
    if has("services", "systems", "status", "health", "running", "are you ok", "online"):
        return Reply(_status(facts.health))
    if has("joke", "funny", "laugh at"):
        return Reply(_joke(facts))
    if has("hello", "hi", "hey", "good morning", "good evening"):
        return Reply(f"Hello. I am {facts.persona.name}.")
    intent, motion, said = parse_intent(question)
    if intent != "chat":
        return Reply(str(said), "stop" if intent == "stop" else motion)
    for phrases, motion, said in _MORE_MOVES:
        if has(*phrases):
            return Reply(said, motion)
    return Reply(f"{NO_MODEL} Ask me what I can do.")


def _recall(question: str, memories: Sequence[Mapping[str, Any]]) -> str:
    asked = question.strip().lower()
    for memory in memories:
        text = memory.get("text")
        if (isinstance(text, str) and text.strip() and text.strip().lower() != asked
                and "remember" not in text.lower()):
            who = "you said" if memory.get("role") == "heard" else "I said"
            return f"I remember that {who}: {text.strip()}"
    return "I do not remember anything about that."


def _traits(persona: Persona) -> str:
    if not persona.traits:
        return f"I am {persona.name}. I have no settings to speak of."
    parts = [f"{name.replace('_', ' ')} {value} percent" for name, value in
             persona.traits.items()]
    return "My settings: " + _join(parts) + "."


def _status(health: Mapping[str, bool]) -> str:
    up = sorted(n for n, ok in health.items() if ok)
    down = sorted(n for n, ok in health.items() if not ok)
    if not up and not down:
        return "I have not heard from any of my systems yet."
    said = f"Running: {_join(up)}." if up else "None of my systems report running."
    return said + (f" Not running: {_join(down)}." if down else " Everything is up.")


def _joke(facts: Facts) -> str:
    humor = facts.persona.traits.get("humor", 50)
    if humor < 30:
        return f"My humor setting is {humor} percent. I would rather not."
    return _JOKES[facts.now.minute % len(_JOKES)]


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
