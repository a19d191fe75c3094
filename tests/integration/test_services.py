"""The three services as real processes against a real mosquitto, on mock pins.

A recorder client subscribed to ``#`` sees what the services publish; every wait is on
a message with a timeout. Each test ends with SIGTERM: ``shutdown`` health and exit 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tars_mqtt import MQTTClient, MQTTConfig
from tars_mqtt.testing import Broker
from tests.services.test_sdnotify import NotifyListener

from .support import (
    ROOT,
    TIMEOUT,
    Recorder,
    Service,
    notify_env,
    raw_envelope,
    raw_request,
    still_live,
)


@pytest.fixture
def rec(make_client: Callable[..., MQTTClient]) -> Recorder:
    return Recorder(make_client())


@pytest.fixture
def start(broker: Broker, tmp_path: Path, rec: Recorder) -> Iterator[Callable[..., Service]]:
    """``start(name, **env)``: a service process, ready (its ``ready`` health seen)."""
    started: list[Service] = []

    def run(name: str, listener: NotifyListener | None = None, **env: str) -> Service:
        if listener is not None:  # as systemd runs it: pings while it is live
            env = {**notify_env(listener), **env}
        svc = Service(name, broker, tmp_path, **env)
        started.append(svc)
        try:
            rec.wait(f"system/health/{name}", timeout=20, event="ready")
        except AssertionError:
            svc.terminate()
            raise AssertionError(f"{name} never got ready; log:\n{svc.log()}") from None
        return svc

    yield run
    for svc in started:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(TIMEOUT)


def stop_cleanly(svc: Service, rec: Recorder) -> None:
    assert svc.terminate() == 0, svc.log()
    rec.wait(f"system/health/{svc.name}", ok=False, event="shutdown")


# movement -----------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_movement_request_reply_busy_stop_rejected_malformed(
        start: Callable[..., Service], rec: Recorder) -> None:
    svc = start("movement")
    caller = rec.client
    reply = caller.request("movement/command", "movement.command",
                           {"action": "wave", "speed": 3}, timeout=TIMEOUT)
    assert reply.data["event"] == "completed" and reply.data["action"] == "wave"
    assert reply.data["angles"]["right_arm"] == 0
    # The reply and the status travel on different subscriptions: either may come first.
    rec.wait("movement/status", event="completed", action="wave")
    assert [s["event"] for s in rec.on("movement/status")] == ["started", "completed"]
    started = rec.wait("movement/status", event="started")
    assert started.correlate == reply.correlate  # both name the command's id

    mark = rec.mark()
    caller.publish_event("movement/command", "movement.command", {
        "action": "pose", "params": {"angles": {"left_arm": 60}, "duration": 20}}).wait(5)
    rec.wait("movement/status", after=mark, event="started", action="pose")
    caller.publish_event("movement/command", "movement.command", {"action": "bow"}).wait(5)
    rec.wait("movement/status", after=mark, event="busy", action="bow")
    caller.publish_event("movement/stop", "movement.stop", {"reason": "test"}).wait(5)
    stopped = rec.wait("movement/status", after=mark, timeout=5, event="stopped",
                       action="pose")  # not 20 s: the stop preempted it
    assert 0 <= stopped.data["angles"]["left_arm"] < 60

    mark = rec.mark()
    caller.publish("movement/command", b"\x00 not json at all", qos=1).wait(5)
    caller.publish_event("movement/command", "movement.command", {"action": "moonwalk"}).wait(5)
    rejected = rec.wait("movement/status", after=mark, event="rejected", action="moonwalk")
    assert "unknown motion 'moonwalk'" in rejected.data["error"]
    beat = rec.wait("system/keepalive/movement", after=mark)
    while beat.data["stats"]["decode_errors"] < 1:  # the garbage was counted, bounded wait
        beat = rec.wait("system/keepalive/movement", after=rec.mark())
    again = caller.request("movement/command", "movement.command",
                           {"action": "pose", "params": {"angles": {"left_arm": 10},
                                                         "duration": 0.1}}, timeout=TIMEOUT)
    assert again.data["event"] == "completed"
    stop_cleanly(svc, rec)
    assert "malformed command #1 ignored" in svc.log()


@pytest.fixture
def listener() -> Iterator[NotifyListener]:
    sock = NotifyListener()
    yield sock
    sock.close()


@pytest.mark.timeout(60)
def test_movement_survives_commands_it_cannot_answer(
        start: Callable[..., Service], rec: Recorder, listener: NotifyListener) -> None:
    """An id no UTF-8 encoder can send back once wedged it ``busy``; a wildcard ``reply_to``
    killed its motion thread. Both are now logged and counted; it goes on moving."""
    svc = start("movement", listener)
    caller = rec.client
    quick = {"action": "pose", "params": {"angles": {"left_arm": 20}, "duration": 0.1}}
    caller.publish("movement/command", raw_envelope(quick, id="\ud800"), qos=1).wait(5)
    wild_id = uuid.uuid4().hex
    caller.publish("movement/command", raw_envelope(quick, id=wild_id, reply_to="bad/+/topic"),
                   qos=1).wait(5)
    done = rec.wait("movement/status", action="pose", event="completed")
    assert done.correlate == wild_id, rec.on("movement/status")  # not "busy"
    caller.publish("movement/stop", raw_envelope({}, id="\udfff"), qos=1).wait(5)
    reply = caller.request("movement/command", "movement.command",
                           {"action": "pose", "params": {"angles": {"left_arm": 5},
                                                         "duration": 0.1}}, timeout=TIMEOUT)
    assert reply.data["event"] == "completed"  # the motion thread is alive
    still_live(listener)
    stop_cleanly(svc, rec)
    assert "reply_to 'bad/+/topic' not followed (#1)" in svc.log()


@pytest.mark.timeout(60)
def test_movement_rejects_a_broken_request_and_follows_no_foreign_reply_to(
        start: Callable[..., Service], rec: Recorder, broker: Broker) -> None:
    """A command whose envelope does not decode but whose MQTT 5 properties name a reply
    topic gets ``rejected`` saying why (it used to get nothing: the asker waited out its
    timeout); a ``reply_to`` of ``tts/say`` no longer makes movement speak there."""
    svc = start("movement")
    answer = raw_request(broker, rec, "movement/command", {"action": "w\ud800ve"}, "c-1")
    assert answer.correlate == "c-1" and answer.data["event"] == "rejected"
    assert "'data.action'" in answer.data["error"] and "UTF-8" in answer.data["error"]
    assert rec.wait("movement/status", event="rejected").correlate == "c-1"
    mark = rec.mark()
    rec.client.publish_event("movement/command", "movement.command", {"action": "fly"},
                             reply_to="tts/say").wait(5)
    rec.wait("movement/status", after=mark, event="rejected", action="fly")
    reply = rec.client.request("movement/command", "movement.command", {"action": "bow"},
                               timeout=TIMEOUT)  # its own reply topic: answered
    assert reply.data["event"] == "completed"
    assert rec.on("tts/say") == []
    stop_cleanly(svc, rec)
    assert "reply_to 'tts/say' not followed" in svc.log()


@pytest.mark.timeout(30)
def test_sigterm_during_a_motion_stops_it_and_exits_0(start: Callable[..., Service],
                                                       rec: Recorder) -> None:
    svc = start("movement")
    rec.client.publish_event("movement/command", "movement.command", {
        "action": "pose", "params": {"angles": {"left_arm": 60}, "duration": 20}}).wait(5)
    rec.wait("movement/status", event="started")
    stop_cleanly(svc, rec)
    stopped = rec.wait("movement/status", event="stopped", action="pose")
    health = [m.topic for m in rec.messages].index("system/health/movement",
                                                   rec.messages.index(stopped))
    assert rec.messages[health].data["event"] == "shutdown"  # reported before going


# wake ---------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_wake_button_events_and_the_led_follows_system_state(
        start: Callable[..., Service], rec: Recorder) -> None:
    svc = start("wake", TARS_WAKE_SIMULATE="1", TARS_WAKE_HOLD_TIME="0.2")
    rec.client.publish_event("wake/simulate", "wake.simulate", {"action": "press"}).wait(5)
    rec.wait("wake/event", type="wake", source="button")
    rec.client.publish_event("wake/simulate", "wake.simulate", {"action": "hold"}).wait(5)
    rec.wait("wake/event", type="cancel", source="button")
    assert [e["type"] for e in rec.on("wake/event")] == ["wake", "cancel"]
    for state in ("listening", "dancing"):
        rec.client.publish_event("system/state", "system.state", {"state": state}, retain=True)
    rec.client.publish("system/state", b"{broken", qos=1, retain=True).wait(5)
    rec.client.publish_event("wake/simulate", "wake.simulate", {"action": "press"}).wait(5)
    rec.wait("wake/event", after=2, type="wake")  # still alive after the bad state
    stop_cleanly(svc, rec)
    log = svc.log()
    assert "LED shows listening" in log
    assert "unknown state 'dancing': the LED shows error" in log
    assert "malformed system/state #1 ignored" in log


def test_wake_refuses_to_simulate_on_real_pins(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    done = subprocess.run([sys.executable, "-m", "services.wake"], cwd=ROOT, timeout=30,
                          env={**env, "TARS_WAKE_SIMULATE": "1"}, capture_output=True, text=True)
    assert done.returncode == 2
    assert "TARS_WAKE_SIMULATE=1 needs GPIOZERO_PIN_FACTORY=mock" in done.stderr


# router -------------------------------------------------------------------------------
def say_and_speak(rec: Recorder, text: str, after: int) -> None:
    """Play the speech service: the router said ``text``; speak it (start, end)."""
    said = rec.wait("tts/say", after=after, text=text)
    for event in ("speaking_start", "speaking_end"):
        rec.client.publish_event("tts/status", "tts.status",
                                 {"event": event, "utt_id": said.data["utt_id"]}, qos=0)
        rec.wait("system/state", after=after,
                 state="speaking" if event == "speaking_start" else "idle")


@pytest.mark.timeout(60)
def test_router_state_machine_llm_fallback_and_cancel(
        start: Callable[..., Service], rec: Recorder) -> None:
    svc = start("router", TARS_ROUTER_LLM_TIMEOUT="1.0", TARS_ROUTER_LISTEN_TIMEOUT="1.0")
    c = rec.client
    idle = rec.wait("system/state", state="idle")
    assert idle.retain or idle.envelope is not None

    def hear(text: str) -> int:
        mark = rec.mark()
        c.publish_event("stt/final", "stt.final", {"text": text}).wait(5)
        rec.wait("system/state", after=mark, state="thinking")
        return mark

    mark = rec.mark()  # wake → listening; nothing heard → the listening timeout → idle
    c.publish_event("wake/event", "wake.event", {"type": "wake", "source": "button"}).wait(5)
    rec.wait("system/state", after=mark, state="listening")
    rec.wait("system/state", after=mark + 1, state="idle")

    mark = hear("please wave")  # a movement word: command, confirmation, speaking, idle
    assert rec.wait("movement/command", after=mark).data == {"action": "wave"}
    say_and_speak(rec, "Okay, waving.", mark)

    llm = MQTTClient(MQTTConfig(url=c.config.url, client_id="fake-llm"))
    with llm:  # an LLM answers
        llm.subscribe("llm/request", lambda m: llm.reply(m, "llm.response", {
            "reply": f"You asked: {m.data['text']}"}), qos=1)
        mark = hear("what is the weather")
        assert rec.wait("llm/request", after=mark).data["text"] == "what is the weather"
        say_and_speak(rec, "You asked: what is the weather", mark)

    mark = hear("what is the weather")  # no LLM: the fallback after the timeout
    said = rec.wait("tts/say", after=mark)
    assert said.data["text"].startswith("Sorry, I cannot think right now")
    c.publish_event("tts/status", "tts.status", {"event": "speaking_start",
                                                  "utt_id": said.data["utt_id"]}, qos=0)
    rec.wait("system/state", after=mark, state="speaking")
    mark = rec.mark()  # cancel: speech stopped, idle
    c.publish_event("wake/event", "wake.event", {"type": "cancel", "source": "button"}).wait(5)
    assert rec.wait("tts/control", after=mark).data == {"action": "stop"}
    rec.wait("system/state", after=mark, state="idle")

    c.publish("stt/final", b"garbage", qos=1).wait(5)
    c.publish_event("stt/final", "stt.final", {"words": 3}).wait(5)
    hear("stop")
    stop_cleanly(svc, rec)
    assert "malformed message #2 on stt/final ignored" in svc.log()


@pytest.mark.timeout(60)
def test_router_survives_what_it_cannot_say_or_hear(
        start: Callable[..., Service], rec: Recorder, listener: NotifyListener) -> None:
    """An LLM reply no UTF-8 encoder can send on (it used to end the router's loop, and the
    process), a transcript that is not UTF-8 and one of 100 kB: the fallback is said, the
    bad transcripts are counted, and the router goes on hearing."""
    svc = start("router", listener, TARS_ROUTER_LLM_TIMEOUT="2.0")
    c = rec.client
    rec.wait("system/state", state="idle")
    llm = MQTTClient(MQTTConfig(url=c.config.url, client_id="hostile-llm"))
    with llm:
        llm.subscribe("llm/request", lambda m: llm.publish(m.reply_to or "llm/response",
                      raw_envelope({"reply": "sunny \ud800"}, event_type="llm.response",
                                   correlate=m.envelope.id if m.envelope else None),
                      qos=1), qos=1)
        mark = rec.mark()
        c.publish_event("stt/final", "stt.final", {"text": "what is the weather"}).wait(5)
        said = rec.wait("tts/say", after=mark)
        assert said.data["text"].startswith("Sorry, I cannot think right now")
    for text in ("wave \ud800", "wave " * 20_000):
        c.publish("stt/final", raw_envelope({"text": text}, event_type="stt.final"),
                  qos=1).wait(5)
    mark = rec.mark()
    c.publish_event("stt/final", "stt.final", {"text": "please wave"}).wait(5)
    assert rec.wait("movement/command", after=mark).data == {"action": "wave"}
    still_live(listener)
    stop_cleanly(svc, rec)
    log = svc.log()
    assert "not valid UTF-8" in log and "(at most 2000)" in log
