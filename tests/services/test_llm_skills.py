"""The offline responder: every skill, movement handed to the router, hostile text."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.persona import load
from services.skills import CAPABILITIES, NO_MODEL, Facts, respond

NOW = datetime(2026, 3, 2, 14, 5)
FACTS = Facts(NOW, load(), {"movement": True, "router": True, "speech": False},
              [{"text": "do you remember?", "role": "heard"},
               {"text": "my cat is called Tom", "role": "heard"}])


@pytest.mark.parametrize(("question", "reply", "action"), [
    ("What time is it?", "It is 14:05.", None),
    ("what day is it today", "Today is Monday, 2 March 2026.", None),
    ("what is your name", "I am TARS, a small walking robot with a dry sense of humour,"
     " helpful and honest.", None),
    ("what is your humor setting", "My humor setting is 75 percent.", None),
    ("what can you do", CAPABILITIES, None),
    ("which systems are running", "Running: movement and router. Not running: speech.", None),
    ("do you remember my cat", "I remember that you said: my cat is called Tom", None),
    ("hello there", "Hello. I am TARS.", None),
    ("please wave", "Okay, waving.", "wave"),
    ("stop that", "Stopping.", "stop"),
    ("come here", "Walking forward.", "step_forward"),
    ("what is the weather", f"{NO_MODEL} Ask me what I can do.", None),
])
def test_skills(question: str, reply: str, action: str | None) -> None:
    assert (respond(question, FACTS).text, respond(question, FACTS).action) == (reply, action)


def test_no_health_no_memory_and_a_humorless_persona() -> None:
    dry = Facts(NOW, load().with_trait("humor", 10))
    assert respond("status", dry).text == "I have not heard from any of my systems yet."
    assert respond("do you remember", dry).text == "I do not remember anything about that."
    assert "I would rather not" in respond("tell me a joke", dry).text
    assert respond("tell me a joke", FACTS).text  # some joke


@pytest.mark.parametrize("junk", ["", "\x00\xff", "🤖" * 5000, "stop" * 1000, "'; DROP"])
def test_any_text_gets_an_answer(junk: str) -> None:
    assert respond(junk, FACTS).text
