"""The web view's pure parts: what the page is told about health, the robot, talk and rates."""

from __future__ import annotations

from typing import Any

from services.ui.rates import OTHER, Rates
from services.ui.transcript import MAX_TEXT, Transcript
from services.ui.view import RobotView, traffic_frame
from tars_mqtt import Envelope, Message
from tars_mqtt.health import HEALTH_TYPE, HEARTBEAT_TYPE, HealthBook
from tests.services.support import garbage, message


def envelope_msg(topic: str, data: dict[str, Any], event_type: str, *, retain: bool = False,
                 correlate: str | None = None, ts: float = 1000.0) -> Message:
    env = Envelope(type=event_type, source="test", data=data, correlate=correlate, ts=ts)
    return Message(topic=topic, payload=env.encode(), qos=1, retain=retain, envelope=env,
                   data=data, correlate=correlate)


def health(client: str, event: str, ok: bool) -> Message:
    return envelope_msg(f"system/health/{client}", {"ok": ok, "event": event}, HEALTH_TYPE,
                        retain=True)


def beat(client: str) -> Message:
    return envelope_msg(f"system/keepalive/{client}", {"ok": True, "event": "heartbeat"},
                        HEARTBEAT_TYPE)


# Health: the same rules as tars-mqtt health -------------------------------------------------
def test_health_rows_carry_state_heartbeat_age_and_stale() -> None:
    view = RobotView(now=100.0, stale_after=5.0)
    for name in ("movement", "wake", "router"):
        view.add(health(name, "ready", True), 100.0)
    view.add(beat("movement"), 101.0)
    view.add(beat("router"), 101.0)
    view.add(health("router", "offline", False), 102.0)  # the will of a killed service
    rows = {r["client"]: r for r in view.tick(now=107.5, wall_now=1003.0)[0]["rows"]}
    assert rows["movement"]["state"] == "ready" and rows["movement"]["stale"]
    assert rows["movement"]["beat"] == "6.5s" and rows["movement"]["beat_age"] == 6.5
    assert rows["wake"]["stale"] and rows["wake"]["beat"] == "-"  # never beat in 7.5 s
    assert rows["router"]["state"] == "offline" and not rows["router"]["healthy"]
    assert not rows["router"]["stale"]  # not ok outranks stale, as in the CLI


def test_health_rows_are_exactly_the_health_books_judgement() -> None:
    view = RobotView(now=0.0, stale_after=3.0)
    book = HealthBook(3.0, 0.0)
    msgs = [health("a", "ready", True), beat("a"), health("b", "reconnected", True),
            health("c", "shutdown", False), garbage("system/health/d")]
    for i, msg in enumerate(msgs):
        view.add(msg, float(i))
        book.add(msg, float(i))
    page = view.tick(now=4.0, wall_now=1001.0)[0]["rows"]
    expected = book.rows(4.0, 1001.0)
    assert [(r["client"], r["state"], r["healthy"], r["stale"], r["status"]) for r in page] == [
        (r.client, r.event, r.healthy, r.stale, r.status) for r in expected]
    assert [r["client"] for r in page] == ["a", "b", "c", "d"]


# The robot now --------------------------------------------------------------------------------
def test_movement_status_sets_motion_last_status_and_angles() -> None:
    view = RobotView(now=0.0)
    frames = view.add(message("movement/status", {"event": "started", "action": "wave"}), 0.0)
    assert frames[0]["robot"]["motion"] == "wave"
    angles = {"left_arm": 0.0, "right_arm": 70.5, "torso_height": 0}
    frames = view.add(message("movement/status", {"event": "stopped", "action": "wave",
                                                  "angles": angles}), 1.0)
    robot = frames[0]["robot"]
    assert robot["motion"] is None
    assert robot["last"] == {"event": "stopped", "action": "wave", "error": ""}
    assert robot["angles"] == {"left_arm": 0.0, "right_arm": 70.5, "torso_height": 0.0}


def test_state_and_speech_indicators() -> None:
    view = RobotView(now=0.0)
    view.add(message("system/state", {"state": "speaking"}), 0.0)
    view.add(message("tts/status", {"event": "speaking_start"}), 0.0)
    assert view.robot.state == "speaking" and view.robot.speaking
    view.add(message("tts/status", {"event": "speaking_end"}), 1.0)
    assert not view.robot.speaking
    view.add(message("tts/status", {"event": "speaking_start"}), 2.0)
    view.add(message("system/state", {"state": "idle"}), 3.0)  # an end that never came
    assert view.robot.state == "idle" and not view.robot.speaking


def test_messages_that_do_not_fit_the_table_change_nothing_and_are_counted() -> None:
    view = RobotView(now=0.0)
    view.add(message("system/state", {"state": "listening"}), 0.0)
    for bad in (message("system/state", {"state": 3}), message("system/state", {"state": "x"}),
                message("movement/status", {"event": "started", "action": 5}),
                message("movement/status", {"event": "done", "action": "wave",
                                            "angles": {"a": "NaN"}}),
                garbage("tts/status")):
        assert view.add(bad, 1.0) == []
    assert view.robot.state == "listening" and view.robot.motion is None
    assert view.tally["malformed"] == 5
    view.add(garbage("some/other/topic"), 1.0)  # not watched: shown in traffic, not counted
    assert view.tally["malformed"] == 5


def test_angles_are_finite_numbers_only() -> None:
    view = RobotView(now=0.0)
    view.add(message("movement/status", {"event": "completed", "action": "bow", "angles": {
        "left_arm": True, "torso_height": -30, "x": "1"}}), 0.0)
    assert view.robot.angles == {"torso_height": -30.0}
    # A non-finite number anywhere makes the status not fit the topic table: ignored whole.
    view.add(message("movement/status", {"event": "completed", "action": "bow", "angles": {
        "left_arm": float("inf"), "torso_height": 10}}), 1.0)
    assert view.robot.angles == {"torso_height": -30.0}


# Conversation -----------------------------------------------------------------------------
def test_conversation_in_order_with_a_streamed_answer_completed_by_the_response() -> None:
    talk = Transcript()
    talk.add("stt/final", {"text": "what is the weather"}, 1.0, None)
    for delta in ("It is ", "sunny", "."):
        entry = talk.add("llm/stream", {"delta": delta}, 2.0, "req-1")
    assert entry is not None and entry.streaming and entry.text == "It is sunny."
    done = talk.add("llm/response", {"reply": "It is sunny."}, 3.0, "req-1")
    assert done is entry and not done.streaming
    talk.add("tts/say", {"text": "It is sunny."}, 4.0, None)
    assert [(e["who"], e["text"]) for e in talk.entries()] == [
        ("heard", "what is the weather"), ("thought", "It is sunny."), ("said", "It is sunny.")]


def test_an_llm_error_shows_as_an_error_entry_and_text_is_bounded() -> None:
    talk = Transcript(size=3)
    entry = talk.add("llm/response", {"reply": "", "error": "timeout"}, 1.0, "r")
    assert entry is not None and entry.error and "timeout" in entry.text
    for _ in range(5000):
        talk.add("llm/stream", {"delta": "xx"}, 1.0, "flood")
    for i in range(10):
        talk.add("tts/say", {"text": f"s{i}"}, 2.0, None)
    entries = talk.entries()
    assert len(entries) == 3 and [e["text"] for e in entries] == ["s7", "s8", "s9"]
    long = talk.add("stt/final", {"text": "y" * 10_000}, 3.0, None)
    assert long is not None and len(long.text) == MAX_TEXT
    assert talk.add("tts/say", {"text": 7}, 1.0, None) is None


# Rates ------------------------------------------------------------------------------------
def test_rates_count_per_tick_and_bound_the_number_of_topics() -> None:
    rates = Rates(now=0.0, window=3, max_topics=2)
    for topic in ("a", "a", "b", "c", "d"):
        rates.add(topic)
    bucket = rates.tick(now=0.5, wall_now=1000.5)
    assert bucket == {"t": 1000.5, "dt": 0.5, "counts": {"a": 2, "b": 1, OTHER: 2}}
    for i in range(5):
        rates.tick(now=1.5 + i, wall_now=1001.5 + i)
    assert len(rates.history()) == 3 and rates.history()[-1]["counts"] == {}


# Traffic-log lines ------------------------------------------------------------------------
def test_traffic_frame_decodes_envelopes_and_says_what_is_wrong() -> None:
    ok = traffic_frame(message("system/state", {"state": "idle"}, event_type="system.state"),
                       5.0)
    assert ok["body"] == '{"state":"idle"}' and ok["type"] == "system.state"
    assert ok["source"] == "test" and ok["error"] is None
    bad = traffic_frame(message("system/state", {"state": "nap"}), 5.0)
    assert "is not one of" in bad["error"]
    raw = traffic_frame(garbage("a/b", b"<script>x</script>" + b"z" * 5000), 5.0)
    assert raw["type"] is None and raw["error"] == "not JSON"
    assert raw["body"].startswith("<script>") and raw["body"].endswith("(5018 bytes)")
    assert raw["ts"] == 5.0
    huge = traffic_frame(garbage("a/b", b"x" * 100_000), 5.0)
    assert huge["body"] == "(100000 bytes, not shown)"
