"""The router's conversation: every transition, intents, timeouts; no MQTT, no clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services import topics as t
from services.conversation import (
    FALLBACK,
    AskLLM,
    Conversation,
    Publish,
    RouterSettings,
    event_from,
    llm_reply,
    parse_intent,
)
from services.router import STUCK_AFTER, Router
from tars_mqtt import ConfigError

from .support import garbage, message

SETTINGS = RouterSettings(llm_timeout=1.5, listening=10, thinking=5, speaking=30)


def said(actions: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Actions as (topic, data), AskLLM as ("ask", {text, turn})."""
    return [(a.spec.name, a.data) if isinstance(a, Publish) else ("ask", vars(a))
            for a in actions]


def states(actions: list[Any]) -> list[str]:
    return [a.data["state"] for a in actions
            if isinstance(a, Publish) and a.spec is t.SYSTEM_STATE]


@pytest.fixture
def conv() -> Conversation:
    return Conversation(SETTINGS)


def test_every_published_action_fits_the_topic_table(conv: Conversation) -> None:
    script = [("wake", "wake"), ("heard", "please wave"), ("tts", "speaking_start", None),
              ("tts", "speaking_end", None), ("heard", "what is the weather"),
              ("answer", 3, None), ("wake", "cancel"), ("heard", "stop")]
    actions = conv.start() + [a for e in script for a in conv.handle(e, 0.0)]
    for a in actions:
        if isinstance(a, Publish):
            assert t.check_payload(a.spec, a.data) == [], a
            assert a.spec.name in {s.name for s in t.TABLE} and "router" in a.spec.publishers


def test_starts_idle_and_says_so(conv: Conversation) -> None:
    assert states(conv.start()) == ["idle"] and conv.state == "idle" and conv.deadline is None


def test_wake_listens(conv: Conversation) -> None:
    assert said(conv.handle(("wake", "wake"), 100.0)) == [
        ("system/state", {"state": "listening"})]
    assert conv.deadline == 110.0


def test_a_movement_word_commands_and_confirms_then_speaking_then_idle(conv: Conversation
                                                                       ) -> None:
    conv.handle(("wake", "wake"), 0.0)
    assert said(conv.handle(("heard", "Please WAVE!"), 1.0)) == [
        ("system/state", {"state": "thinking"}),
        ("movement/command", {"action": "wave"}),
        ("tts/say", {"text": "Okay, waving.", "utt_id": "r1"}),
    ]
    assert conv.deadline == 6.0
    assert states(conv.handle(("tts", "speaking_start", "r1"), 2.0)) == ["speaking"]
    assert conv.deadline == 32.0
    assert states(conv.handle(("tts", "speaking_end", "r1"), 3.0)) == ["idle"]
    assert conv.deadline is None


def test_stop_words_stop_the_movement(conv: Conversation) -> None:
    assert said(conv.handle(("heard", "stop it now"), 0.0))[1:] == [
        ("movement/stop", {"reason": "voice"}),
        ("tts/say", {"text": "Stopping.", "utt_id": "r1"}),
    ]


def test_anything_else_asks_the_llm_and_says_its_reply(conv: Conversation) -> None:
    conv.handle(("wake", "wake"), 0.0)
    actions = conv.handle(("heard", "what is the weather"), 1.0)
    assert said(actions) == [("system/state", {"state": "thinking"}),
                             ("ask", {"text": "what is the weather", "turn": 2,
                                      "session": "router-1", "history": ()})]
    assert said(conv.handle(("answer", 2, "Sunny."), 2.0)) == [
        ("tts/say", {"text": "Sunny.", "utt_id": "r1"})]


def test_no_llm_answer_says_the_fallback(conv: Conversation) -> None:
    ask = conv.handle(("heard", "what is the weather"), 0.0)[-1]
    assert isinstance(ask, AskLLM)
    assert said(conv.handle(("answer", ask.turn, None), 1.5)) == [
        ("tts/say", {"text": FALLBACK, "utt_id": "r1"})]


def test_a_stale_llm_answer_is_ignored(conv: Conversation) -> None:
    ask = conv.handle(("heard", "tell me a joke"), 0.0)[-1]
    assert isinstance(ask, AskLLM)
    conv.handle(("heard", "what time is it"), 0.5)  # a newer question
    assert conv.handle(("answer", ask.turn, "old joke"), 1.0) == []
    conv.handle(("wake", "cancel"), 1.1)
    assert conv.handle(("answer", ask.turn + 1, "noon"), 1.2) == []


def test_cancel_stops_speech_and_returns_to_idle_from_any_state(conv: Conversation) -> None:
    for setup in ([], [("wake", "wake")], [("heard", "wave")],
                  [("heard", "wave"), ("tts", "speaking_start", "r1")]):
        c = Conversation(SETTINGS)
        for e in setup:
            c.handle(e, 0.0)
        assert said(c.handle(("wake", "cancel"), 1.0)) == [
            ("tts/control", {"action": "stop"}), ("system/state", {"state": "idle"})]
        assert c.state == "idle" and c.deadline is None


def test_speech_of_a_cancelled_utterance_is_not_ours(conv: Conversation) -> None:
    conv.handle(("heard", "wave"), 0.0)
    conv.handle(("wake", "cancel"), 0.5)
    assert conv.handle(("tts", "speaking_start", "r1"), 0.6) == []
    assert conv.state == "idle"


def test_wake_while_speaking_interrupts(conv: Conversation) -> None:
    conv.handle(("heard", "bow"), 0.0)
    conv.handle(("tts", "speaking_start", None), 0.1)
    assert said(conv.handle(("wake", "wake"), 0.2)) == [
        ("tts/control", {"action": "stop"}), ("system/state", {"state": "listening"})]


@pytest.mark.parametrize(("setup", "state", "limit"), [
    ([("wake", "wake")], "listening", 10),
    ([("heard", "what is the weather")], "thinking", 5),
    ([("heard", "wave"), ("tts", "speaking_start", "r1")], "speaking", 30),
])
def test_every_state_times_out_to_idle(setup: list[Any], state: str, limit: float) -> None:
    conv = Conversation(SETTINGS)
    for e in setup:
        conv.handle(e, 0.0)
    assert conv.state == state
    assert conv.handle(("timeout",), limit - 0.01) == []
    assert states(conv.handle(("timeout",), limit)) == ["idle"]
    assert conv.handle(("timeout",), limit + 100) == []


def test_an_llm_answer_after_the_thinking_timeout_is_dropped(conv: Conversation) -> None:
    ask = conv.handle(("heard", "what is the weather"), 0.0)[-1]
    assert isinstance(ask, AskLLM)
    conv.handle(("timeout",), 5.0)
    assert conv.handle(("answer", ask.turn, "late"), 6.0) == []


def test_foreign_speech_events_are_ignored(conv: Conversation) -> None:
    conv.handle(("heard", "wave"), 0.0)
    assert conv.handle(("tts", "speaking_start", "someone-else"), 0.1) == []
    assert conv.handle(("tts", "speaking_end", "r1"), 0.2) == []  # not speaking yet
    assert conv.state == "thinking"


@pytest.mark.parametrize(("text", "intent"), [
    ("please wave", ("move", "wave")),
    ("can you say hello", ("move", "wave")),
    ("take a bow", ("move", "bow")),
    ("Step forward.", ("move", "step_forward")),
    ("walk back please", ("move", "step_backward")),
    ("turn left", ("move", "turn_left")),
    ("TURN RIGHT", ("move", "turn_right")),
    ("stop", ("stop", None)),
    ("halt! wave no more", ("stop", None)),
    ("what is the weather", ("chat", None)),
    ("my elbow hurts", ("chat", None)),
    ("wavelength of light", ("chat", None)),
    ("", ("chat", None)),
])
def test_intents(text: str, intent: tuple[str, str | None]) -> None:
    assert parse_intent(text)[:2] == intent


def test_messages_become_events_and_malformed_ones_none() -> None:
    assert event_from(message("wake/event", {"type": "cancel", "source": "button"})) == (
        ("wake", "cancel"), None)
    assert event_from(message("stt/final", {"text": "hi"})) == (("heard", "hi"), None)
    assert event_from(message("tts/status", {"event": "speaking_end", "utt_id": "r2"})) == (
        ("tts", "speaking_end", "r2"), None)
    for bad, named in ((garbage("wake/event"), "not an envelope"),
                       (message("wake/event", {"type": "dance"}), "'dance' is not one of"),
                       (message("stt/final", {"text": "   "}), "empty text"),
                       (message("stt/final", {"txt": "x"}), "missing field 'text'"),
                       (message("tts/status", {"event": "humming"}), "'humming'"),
                       (message("stt/final", {"text": "wave \ud800"}), "not valid UTF-8"),
                       (message("stt/final", {"text": "hi", "confidence": float("nan")}),
                        "not a finite number"),
                       (message("stt/final", {"text": "wave " * 1000}), "at most 2000")):
        event, problem = event_from(bad)
        assert event is None and problem is not None and named in problem, (bad, problem)


@pytest.mark.parametrize(("data", "said", "named"), [
    ({"reply": "It is sunny."}, ("It is sunny.", None), None),
    ({"reply": "Okay.", "action": "wave"}, ("Okay.", "wave"), None),
    ({"reply": "", "error": "model offline"}, (None, None), "model offline"),
    ({"reply": "sunny \udc00"}, (None, None), "not valid UTF-8"),
    ({"reply": 42}, (None, None), "has type int"),
    ([1, 2], (None, None), "must be an object"),
])
def test_llm_replies_that_cannot_be_said_give_the_fallback(
        data: Any, said: tuple[str | None, str | None], named: str | None) -> None:
    reply, action, problem = llm_reply(message("llm/response", data))
    assert (reply, action) == said
    assert (problem is None) if named is None else (named in (problem or ""))


def test_settings_from_env() -> None:
    s = RouterSettings.from_env({"TARS_ROUTER_LLM_TIMEOUT": "1.5"})
    assert (s.llm_timeout, s.thinking, s.listening, s.speaking) == (1.5, 6.5, 10, 30)
    with pytest.raises(ConfigError, match="TARS_ROUTER_THINK_TIMEOUT"):
        RouterSettings.from_env({"TARS_ROUTER_LLM_TIMEOUT": "5", "TARS_ROUTER_THINK_TIMEOUT": "2"})
    with pytest.raises(ConfigError, match="TARS_ROUTER_SPEAK_TIMEOUT"):
        RouterSettings.from_env({"TARS_ROUTER_SPEAK_TIMEOUT": "soon"})


def test_the_router_loop_counts_as_stuck_on_one_event_or_past_a_deadline() -> None:
    class Client:  # the router only subscribes at construction
        def subscribe(self, *args: Any, **kwargs: Any) -> None:
            pass

    now = [1000.0]
    seen: list[str | None] = []  # what the watchdog thread would see while the loop is held

    async def check() -> None:
        router = Router(Client(), SETTINGS, clock=lambda: now[0])  # type: ignore[arg-type]

        def perform(actions: Any) -> None:
            if router._busy_since is not None:  # on an event: held up for a long time
                now[0] += STUCK_AFTER + 1
                seen.append(router.liveness())

        router._perform = perform  # type: ignore[method-assign]
        loop = asyncio.create_task(router.run())
        await asyncio.sleep(0)
        now[0] += STUCK_AFTER + 1
        assert router.liveness() is None  # waiting for events, no deadline: idle, not stuck
        await router.events.put(("wake", "wake"))
        while not seen:
            await asyncio.sleep(0)
        assert "has been on one event for 61 s" in (seen[0] or "")
        await asyncio.sleep(0)
        assert router.machine.state == "listening" and router.liveness() is None
        now[0] += SETTINGS.listening + STUCK_AFTER + 1  # the loop never woke for the deadline
        assert "missed a deadline by" in (router.liveness() or "")
        loop.cancel()

    asyncio.run(check())
