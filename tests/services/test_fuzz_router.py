"""Property tests: the router's pure parts take any message and keep to the topic table.

Messages on the router's topics carry anything a hostile login could send; the
conversation is driven by whatever of them :func:`event_from` lets through, mixed with
LLM answers and timeouts. It never raises, always has a known state and a deadline when
not idle, and everything it publishes fits the table.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services import topics as t
from services.conversation import (
    MOVES,
    STOP_WORDS,
    Conversation,
    Publish,
    RouterSettings,
    event_from,
    llm_reply,
    parse_intent,
)
from tars_mqtt import Message

from .strategies import any_text, data_for, values
from .support import garbage, message

STATES = t.SYSTEM_STATE.values["state"]
PHRASES = [p for phrases, _, _ in MOVES for p in phrases] + list(STOP_WORDS)
speech = st.lists(st.sampled_from(PHRASES) | any_text, max_size=4).map(" ".join)


def on(spec: t.TopicSpec, **known: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    """Messages on ``spec``'s topic: enveloped data of any kind, or bytes that are none."""
    return (data_for(spec, **known).map(lambda d: message(spec.name, d))
            | st.binary(max_size=30).map(lambda b: garbage(spec.name, b)))


inbound = (on(t.WAKE_EVENT) | on(t.STT_FINAL, text=speech)
           | on(t.TTS_STATUS, utt_id=st.sampled_from(["r1", "r2", "r3"]))
           | on(t.LLM_STREAM, delta=speech, seq=st.integers(0, 4), turn=st.integers(0, 6)))


@settings(max_examples=400, deadline=None)
@given(msg=inbound)
def test_event_from_gives_an_event_or_says_why_not(msg: Message) -> None:
    event, problem = event_from(msg)
    assert (event is None) != (problem is None)
    if problem is not None:
        problem.encode("utf-8")
        assert len(problem) < 600


@settings(max_examples=300, deadline=None)
@given(msg=on(t.LLM_RESPONSE, reply=speech))
def test_llm_reply_is_something_to_say_or_a_reason_for_the_fallback(msg: Message) -> None:
    reply, action, problem = llm_reply(msg)
    assert (reply is None) != (problem is None)
    if reply is not None:
        reply.encode("utf-8")
    assert action is None or (isinstance(action, str) and reply is not None)


@settings(max_examples=300, deadline=None)
@given(text=speech | any_text)
def test_parse_intent_takes_any_text(text: str) -> None:
    intent, motion, said = parse_intent(text)
    assert intent in ("stop", "move", "chat")
    assert (motion is not None) == (intent == "move")


step = (inbound.map(lambda m: ("msg", m))
        | st.tuples(st.just("answer"), st.integers(0, 6), on(
            t.LLM_RESPONSE, reply=speech, action=st.sampled_from(["wave", "stop", "fly"])))
        | st.tuples(st.just("wait"), st.floats(0, 40)))


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(step, max_size=25))
def test_the_conversation_survives_any_traffic_and_publishes_only_the_table(
        steps: list[tuple[Any, ...]]) -> None:
    conv = Conversation(RouterSettings(llm_timeout=1, listening=5, thinking=6, speaking=20))
    now = 0.0
    actions = conv.start()
    for kind, *rest in steps:
        if kind == "msg":
            event = event_from(rest[0])[0]
        elif kind == "answer":
            reply, action, _ = llm_reply(rest[1])
            event = ("answer", rest[0], reply, action)
        else:
            now += rest[0]
            event = ("timeout",)
        if event is not None:
            actions += conv.handle(event, now)
        assert conv.state in STATES
        assert (conv.deadline is None) == (conv.state == "idle")
    for action in actions:
        if isinstance(action, Publish):
            assert t.check_payload(action.spec, action.data) == [], action
        else:
            assert action.text.strip() and action.text.encode("utf-8")
            assert all(t.check_payload(t.LLM_REQUEST, {"text": action.text, "history": [h]})
                       == [] for h in action.history)


@settings(max_examples=100, deadline=None)
@given(value=values)
def test_values_of_any_kind_never_reach_the_conversation_unchecked(value: Any) -> None:
    for spec in (t.WAKE_EVENT, t.STT_FINAL, t.TTS_STATUS, t.LLM_STREAM):
        event, _ = event_from(message(spec.name, value))
        assert event is None or isinstance(value, dict)
