"""The router's side of a streamed answer: sentences as they complete, cancels, history."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services import topics as t
from services.conversation import FALLBACK, AskLLM, Conversation, Publish, RouterSettings
from services.conversation_answer import SpokenAnswer, split_sentences

SETTINGS = RouterSettings(llm_timeout=1.5, listening=10, thinking=5, speaking=30,
                          session_gap=100, history=4)


def says(actions: list[Any]) -> list[str]:
    return [a.data["text"] for a in actions if isinstance(a, Publish) and a.spec is t.TTS_SAY]


def topics(actions: list[Any]) -> list[str]:
    return [a.spec.name if isinstance(a, Publish) else "ask" for a in actions]


def ask(conv: Conversation, text: str, now: float = 0.0) -> AskLLM:
    actions = conv.handle(("heard", text), now)
    assert isinstance(actions[-1], AskLLM)
    return actions[-1]


def stream(conv: Conversation, turn: int, *pieces: str, now: float = 1.0) -> list[str]:
    return [s for n, p in enumerate(pieces) for s in says(conv.handle(("delta", turn, n, p),
                                                                      now))]


@pytest.fixture
def conv() -> Conversation:
    return Conversation(SETTINGS)


@pytest.mark.parametrize(("text", "sentences", "rest"), [
    ("Hello there. I am", ["Hello there."], " I am"),
    ("Pi is 3.14 or so! Really? ", ["Pi is 3.14 or so!", "Really?"], " "),
    ('He said "stop." Then', ['He said "stop."'], " Then"),
    ("Wait...", [], "Wait..."),
    ("line one\nline two", ["line one"], "line two"),
    ("", [], ""),
])
def test_sentences_end_at_punctuation_before_white_space(text: str, sentences: list[str],
                                                         rest: str) -> None:
    assert split_sentences(text) == (sentences, rest)


def test_one_tts_say_per_sentence_as_it_completes_then_the_rest_with_the_reply(
        conv: Conversation) -> None:
    a = ask(conv, "tell me about cats")
    assert stream(conv, a.turn, "Cats", " purr.") == []  # "purr.5" could still follow
    assert says(conv.handle(("delta", a.turn, 2, " They sleep a lot. And"), 1.0)) == [
        "Cats purr.", "They sleep a lot."]
    assert stream(conv, a.turn, "Cats") == []  # a replay (seq 0 again) breaks nothing
    assert says(conv.handle(("answer", a.turn, "Cats purr. They sleep a lot. And eat."), 2.0)) \
        == ["And eat."]


def test_a_lost_piece_stops_streaming_and_the_reply_fills_in(conv: Conversation) -> None:
    a = ask(conv, "count")
    assert says(conv.handle(("delta", a.turn, 0, "One. Two"), 1.0)) == ["One."]
    assert says(conv.handle(("delta", a.turn, 2, " four. "), 1.1)) == []  # seq 1 was lost
    assert says(conv.handle(("delta", a.turn, 3, "Five. "), 1.2)) == []
    assert says(conv.handle(("answer", a.turn, "One. Two three four. Five."), 2.0)) == [
        "Two three four.", "Five."]


def test_a_failure_after_some_words_says_nothing_more_before_any_the_fallback(
        conv: Conversation) -> None:
    a = ask(conv, "talk")
    stream(conv, a.turn, "First part. Sec")
    assert says(conv.handle(("answer", a.turn, None), 2.0)) == []
    b = ask(conv, "talk again", 3.0)
    assert says(conv.handle(("answer", b.turn, None), 4.0)) == [FALLBACK]
    c = ask(conv, "and again", 5.0)
    assert says(conv.handle(("answer", c.turn, ""), 6.0)) == [FALLBACK]  # nothing sayable


def test_idle_only_once_the_last_sentence_was_spoken(conv: Conversation) -> None:
    a = ask(conv, "two things")
    stream(conv, a.turn, "One. ")
    conv.handle(("tts", "speaking_start", "r1"), 1.1)
    assert conv.state == "speaking"
    conv.handle(("delta", a.turn, 1, "Two. "), 1.2)
    assert conv.handle(("tts", "speaking_end", "r1"), 1.5) == []  # "Two." is still to come
    conv.handle(("answer", a.turn, "One. Two."), 1.6)
    conv.handle(("tts", "speaking_start", "r2"), 1.7)
    assert [a.data for a in conv.handle(("tts", "speaking_end", "r2"), 2.0)] == [
        {"state": "idle"}]


def test_wake_cancel_or_a_new_question_while_an_answer_comes_cancels_it(
        conv: Conversation) -> None:
    a = ask(conv, "a long story")
    stream(conv, a.turn, "Once upon a time. ")
    assert topics(conv.handle(("wake", "wake"), 2.0))[0] == "llm/cancel"
    assert stream(conv, a.turn, "Once upon a time. ", "There was a robot. ") == []  # stale
    b = ask(conv, "another story", 3.0)
    actions = conv.handle(("heard", "and a third"), 3.5)
    assert topics(actions) == ["llm/cancel", "ask"]
    assert actions[0].data == {"session": b.session}
    assert topics(conv.handle(("wake", "cancel"), 4.0)) == [
        "llm/cancel", "tts/control", "system/state"]
    assert topics(conv.handle(("wake", "cancel"), 4.5)) == ["tts/control", "system/state"]


def test_an_answer_with_an_action_runs_that_intent(conv: Conversation) -> None:
    a = ask(conv, "come here")
    actions = conv.handle(("answer", a.turn, "Walking forward.", "step_forward"), 1.0)
    assert [(x.spec.name, x.data) for x in actions if isinstance(x, Publish)] == [
        ("movement/command", {"action": "step_forward"}),
        ("tts/say", {"text": "Walking forward.", "utt_id": "r1"})]
    b = ask(conv, "enough", 2.0)
    assert topics(conv.handle(("answer", b.turn, "Stopping.", "stop"), 3.0))[0] == \
        "movement/stop"
    c = ask(conv, "do something", 4.0)
    assert topics(conv.handle(("answer", c.turn, "Done.", "self_destruct"), 5.0)) == [
        "tts/say"]  # an action the router does not know is not run


def test_history_goes_with_each_question_bounded_and_reset_after_a_pause(
        conv: Conversation) -> None:
    a = ask(conv, "hi", 0.0)
    assert a.history == () and a.session == "router-1"
    conv.handle(("answer", a.turn, "Hello."), 1.0)
    b = ask(conv, "how are you", 2.0)
    assert b.history == ({"role": "user", "content": "hi"},
                         {"role": "assistant", "content": "Hello."})
    conv.handle(("answer", b.turn, "Fine."), 3.0)
    c = ask(conv, "and now", 4.0)
    assert len(c.history) == 4 and c.history[0]["content"] == "hi"
    conv.handle(("answer", c.turn, "Now."), 5.0)
    d = ask(conv, "again", 6.0)
    assert len(d.history) <= 4 and d.history[-1]["content"] == "Now."  # the newest kept
    e = ask(conv, "much later", 200.0)
    assert e.history == () and e.session == "router-2"


def test_spoken_answer_never_repeats_what_was_said() -> None:
    answer = SpokenAnswer(1)
    assert answer.delta(0, "Yes. And") == ["Yes."]
    assert answer.finish("No, something else entirely.") == []  # differs: not said twice
    assert answer.delta(1, " more. ") == []  # after the end


def test_pieces_that_come_after_the_whole_reply_are_counted_and_never_said_twice(
        conv: Conversation) -> None:
    """Pieces (QoS 0, llm/stream) and the reply (QoS 1, the request's reply topic) travel on
    different subscriptions: under load the reply can be handled first."""
    a = ask(conv, "tell me about cats")
    assert says(conv.handle(("delta", a.turn, 0, "Cats purr. "), 1.0)) == ["Cats purr."]
    assert says(conv.handle(("answer", a.turn, "Cats purr. They sleep. A lot."), 1.1)) == [
        "They sleep.", "A lot."]  # the reply overtook pieces 1 and 2
    assert says(conv.handle(("delta", a.turn, 1, "They sleep. "), 1.2)) == []
    assert conv.handle(("delta", a.turn, 2, "A lot."), 1.3) == []
    assert conv.tally["late_pieces"] == 2
    b = ask(conv, "and dogs?", 2.0)
    assert says(conv.handle(("answer", b.turn, "Dogs bark."), 2.1)) == ["Dogs bark."]
    assert conv.handle(("delta", b.turn, 0, "Dogs bark."), 2.2) == []  # before any piece
    assert conv.handle(("delta", a.turn, 3, "More. "), 2.3) == []  # of an older answer
    assert (conv.tally["late_pieces"], conv.tally["stale_pieces"]) == (3, 1)


words = st.sampled_from(["Yes", "no", "3.5", "cats", "purr", "!", "?", ".", " ", "\n", ". "])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(words, min_size=1, max_size=4).map("".join), min_size=1, max_size=8),
       st.data())
def test_whatever_the_order_of_pieces_and_reply_each_sentence_is_said_once_in_order(
        pieces: list[str], data: st.DataObject) -> None:
    conv = Conversation(SETTINGS)
    a = ask(conv, "talk")
    reply = "".join(pieces)
    events: list[tuple[Any, ...]] = [("delta", a.turn, n, p) for n, p in enumerate(pieces)]
    events.insert(data.draw(st.integers(0, len(events)), label="reply at"),
                  ("answer", a.turn, reply))
    said = [s for event in events for s in says(conv.handle(event, 1.0))]
    whole, rest = split_sentences(reply)
    expected = whole + ([rest.strip()] if rest.strip() else [])
    assert said == (expected or [FALLBACK])
    late = len(events) - 1 - events.index(("answer", a.turn, reply))
    assert conv.tally["late_pieces"] == late
