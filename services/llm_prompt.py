"""The chat-completions prompt for one question, pure: persona, memory, history, question.

Everything that reaches the model from the bus is checked and bounded here: history
entries that are not ``{role: user|assistant, content: text}`` are dropped, long texts are
cut, and only the newest turns are kept, so one hostile request cannot blow up the prompt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from .persona import Persona

__all__ = ["MAX_HISTORY", "build_messages", "clean_history", "system_prompt", "useful_memories"]

MAX_HISTORY = 12  # messages (6 exchanges)
MAX_CHARS = 1000  # of one history message or memory
LATEST = 32503680000.0  # 3000-01-01: a memory "from" later is no time (localtime overflows)
STYLE = ("You speak through a loudspeaker: answer in one to three short, plain sentences,"
         " with no lists, markdown or emoji.")


def clean_history(history: Any, limit: int = MAX_HISTORY) -> list[dict[str, str]]:
    """The valid entries of a request's ``history``, newest ``limit`` kept."""
    if not isinstance(history, list):
        return []
    kept = [{"role": h["role"], "content": h["content"][:MAX_CHARS]} for h in history
            if isinstance(h, dict) and h.get("role") in ("user", "assistant")
            and isinstance(h.get("content"), str) and h["content"].strip()]
    return kept[-limit:] if limit > 0 else []


def useful_memories(results: Any, question: str, history: Sequence[Mapping[str, str]],
                    k: int) -> list[dict[str, Any]]:
    """Memory results worth showing: well-formed, not the question or history repeated."""
    if not isinstance(results, list):
        return []
    seen = {question.strip().lower(), *(h["content"].strip().lower() for h in history)}
    useful = []
    for r in results:
        if not (isinstance(r, dict) and isinstance(r.get("text"), str)
                and r.get("role") in ("heard", "said")):
            continue
        text = r["text"].strip()[:MAX_CHARS]
        if text and text.lower() not in seen:
            seen.add(text.lower())
            ts = r.get("ts")
            useful.append({"text": text, "role": r["role"],
                           "ts": ts if isinstance(ts, int | float) and 0 < ts < LATEST
                           else None})
    return useful[:k]


def system_prompt(persona: Persona, memories: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"You are {persona.name}" + (f", {persona.description}." if persona.description
                                          else "."), STYLE]
    if persona.traits:
        lines.append("Your settings: " + ", ".join(f"{k.replace('_', ' ')} {v}%"
                                                   for k, v in persona.traits.items()) + ".")
    if memories:
        lines.append("From earlier conversations (may help, may not):")
        for m in memories:
            who = "the user said" if m["role"] == "heard" else "you said"
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["ts"])) if m["ts"] else "?"
            lines.append(f"- ({when}) {who}: {m['text']}")
    return "\n".join(lines)


def build_messages(question: str, persona: Persona, memories: Sequence[Mapping[str, Any]],
                   history: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The ``messages`` of a chat-completions request."""
    return [{"role": "system", "content": system_prompt(persona, memories)},
            *({"role": h["role"], "content": h["content"]} for h in history),
            {"role": "user", "content": question[:MAX_CHARS * 2]}]
