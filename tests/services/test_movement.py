"""The movement service's logic: ``handle`` alone, then the service on mock servo pins."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hw import DEFAULT_CALIBRATION_PATH, ServoRig, load_calibration
from services.movement import RESULT_TYPE, Movement, handle
from services.topics import MOVEMENT_STATUS, check_payload

from .support import FakeClient, Published, garbage, message

STATUS = MOVEMENT_STATUS.name
ARM_PIN = 6  # left_arm in the shipped calibration (soft limits -80..80)


@pytest.fixture
def rig(factory: Any) -> Iterator[ServoRig]:
    with ServoRig(load_calibration(DEFAULT_CALIBRATION_PATH), pin_factory=factory) as r:
        yield r


@pytest.fixture
def service(rig: ServoRig) -> Iterator[tuple[Movement, FakeClient]]:
    client = FakeClient()
    svc = Movement(client, rig)  # type: ignore[arg-type]
    yield svc, client
    svc.close()


def long_pose(degrees: float = 50.0, duration: float = 20) -> dict[str, Any]:
    return {"action": "pose", "params": {"angles": {"left_arm": degrees}, "duration": duration}}


# handle: pure decisions ---------------------------------------------------------------
def test_a_known_motion_runs(rig: ServoRig) -> None:
    verdict = handle({"action": "wave", "speed": 2}, busy=False, rig=rig)
    assert (verdict.event, verdict.action, verdict.error) == ("run", "wave", None)
    assert verdict.frames and all("right_arm" in f.pose for f in verdict.frames)


@pytest.mark.parametrize(("data", "named"), [
    ({"action": "dance"}, "unknown motion 'dance'"),
    ({}, "missing field 'action'"),
    ({"action": 3}, "field 'action' has type int"),
    ({"action": "wave", "params": [1]}, "field 'params' has type list"),
    ({"action": "wave", "params": {"x": 1}}, "takes no params"),
    ({"action": "wave", "speed": 9}, "speed 9 is out of range"),
    ({"action": "wave", "speed": "fast"}, "field 'speed' has type str"),
    ({"action": "pose", "params": {"angles": {"left_arm": 85}}}, "angle 85 is outside"),
    ({"action": "pose", "params": {"angles": {"tail": 5}}}, "unknown joint 'tail'"),
    ("wave", "data must be an object"),
])
def test_bad_commands_are_rejected_naming_the_problem(rig: ServoRig, data: Any,
                                                      named: str) -> None:
    verdict = handle(data, busy=False, rig=rig)
    assert verdict.event == "rejected"
    assert verdict.error is not None and named in verdict.error


def test_a_good_command_while_busy_is_busy_and_a_bad_one_still_rejected(rig: ServoRig) -> None:
    assert handle({"action": "bow"}, busy=True, rig=rig).event == "busy"
    assert handle({"action": "fly"}, busy=True, rig=rig).event == "rejected"


def test_a_command_older_than_max_age_is_rejected_not_run(rig: ServoRig) -> None:
    """A command kept by the broker while the service restarted must not move the robot."""
    stale = handle({"action": "wave"}, busy=False, rig=rig, age=120.0, max_age=30.0)
    assert stale.event == "rejected" and stale.frames == ()
    assert stale.error is not None and "120 s ago" in stale.error
    assert handle({"action": "wave"}, busy=False, rig=rig, age=2.0, max_age=30.0).event == "run"


# the service, on mock pins ------------------------------------------------------------
def statuses(client: FakeClient, correlate: str | None) -> list[str]:
    return [p.data["event"] for p in client.on(STATUS) if p.correlate == correlate]


def test_a_motion_is_started_then_completed_with_its_angles(
        service: tuple[Movement, FakeClient], rig: ServoRig) -> None:
    svc, client = service
    cmd = message("movement/command", {"action": "pose", "params": {
        "angles": {"left_arm": 30}, "duration": 0.1}}, reply_to="system/reply/t")
    svc.on_command(cmd)
    done = client.wait_for(lambda p: p.topic == STATUS and p.data["event"] == "completed")
    assert cmd.envelope is not None and done.correlate == cmd.envelope.id
    assert statuses(client, cmd.envelope.id) == ["started", "completed"]
    assert done.data["angles"]["left_arm"] == 30 == rig.angles()["left_arm"]
    assert all(check_payload(MOVEMENT_STATUS, p.data) == [] for p in client.on(STATUS))
    [reply] = client.on("system/reply/t")
    assert (reply.event_type, reply.data["event"], reply.correlate) == (
        RESULT_TYPE, "completed", cmd.envelope.id)


def test_the_service_refuses_a_stale_command_by_its_envelope_time(
        service: tuple[Movement, FakeClient], rig: ServoRig) -> None:
    svc, client = service
    cmd = message("movement/command", {"action": "wave"})
    assert cmd.envelope is not None
    object.__setattr__(cmd.envelope, "ts", cmd.envelope.ts - 3600)  # sent an hour ago
    svc.on_command(cmd)
    answer = client.wait_for(lambda p: p.topic == STATUS)
    assert answer.data["event"] == "rejected" and "ago" in answer.data["error"]
    assert rig.angles() == rig.neutral_pose()


def test_stop_preempts_a_long_motion_and_the_servos_hold(
        service: tuple[Movement, FakeClient], factory: Any) -> None:
    svc, client = service
    arm = factory.pin(ARM_PIN)
    svc.on_command(message("movement/command", long_pose(duration=4)))  # 200 steps
    assert arm.wait_for(lambda values: len(values) > 25), "the arm never got going"
    before = {n: len(factory.pin(n).values()) for n in (5, 12, 13, 6, 26)}
    svc.on_stop(message("movement/stop", {"reason": "test"}))
    stopped = client.wait_for(lambda p: p.topic == STATUS and p.data["event"] == "stopped",
                              timeout=5)
    after = {n: len(factory.pin(n).values()) for n in before}
    assert all(after[n] - before[n] <= 1 for n in before), (before, after)  # one step at most
    held = stopped.data["angles"]["left_arm"]
    assert 0 < held < 50
    threading.Event().wait(0.2)  # ten steps' time: nothing may move any more
    assert {n: len(factory.pin(n).values()) for n in before} == after
    assert svc.rig.angles()["left_arm"] == pytest.approx(held, abs=0.01)


def test_a_command_while_busy_gets_busy_not_queued(service: tuple[Movement, FakeClient]
                                                   ) -> None:
    svc, client = service
    svc.on_command(message("movement/command", long_pose()))
    second = message("movement/command", {"action": "wave"}, reply_to="system/reply/t")
    svc.on_command(second)
    assert second.envelope is not None
    assert statuses(client, second.envelope.id) == ["busy"]
    assert client.on("system/reply/t")[0].data["event"] == "busy"
    svc.on_stop(message("movement/stop", {}))
    client.wait_for(lambda p: p.data.get("event") == "stopped")
    assert svc.tally["busy"] == 1
    assert "wave" not in [p.data["action"] for p in client.on(STATUS)
                          if p.data["event"] == "started"]


def test_stop_when_idle_is_acknowledged(service: tuple[Movement, FakeClient]) -> None:
    svc, client = service
    stop = message("movement/stop", {})
    svc.on_stop(stop)
    assert stop.envelope is not None
    [ack] = client.on(STATUS)
    assert (ack.data["event"], ack.data["action"], ack.correlate) == (
        "stopped", "none", stop.envelope.id)


def test_malformed_messages_are_counted_and_ignored(service: tuple[Movement, FakeClient]
                                                    ) -> None:
    svc, client = service
    svc.on_command(garbage("movement/command"))
    svc.on_command(message("movement/command", {"action": "fly"}))
    assert svc.tally["malformed"] == 1 and svc.tally["rejected"] == 1
    assert [p.data["event"] for p in client.on(STATUS)] == ["rejected"]
    svc.on_command(message("movement/command", {"action": "pose", "params": {
        "angles": {"left_arm": 10}, "duration": 0}}))
    client.wait_for(lambda p: p.data.get("event") == "completed")


def test_a_hardware_fault_is_failed_and_the_service_lives_on(
        service: tuple[Movement, FakeClient], rig: ServoRig) -> None:
    svc, client = service
    rig.close()
    svc.on_command(message("movement/command", {"action": "wave"}))
    failed: Published = client.wait_for(lambda p: p.data.get("event") == "failed")
    assert "closed" in failed.data["error"]
    svc.on_command(message("movement/command", {"action": "wave"}))
    client.wait_for(lambda p: len([q for q in client.on(STATUS)
                                   if q.data["event"] == "failed"]) == 2)


# hostile commands: the service answers what it can and never wedges ------------------
@pytest.mark.parametrize(("data", "named"), [
    ({"action": "wave", "speed": 10**400}, "too large"),
    ({"action": "pose", "params": {"angles": {"left_arm": 10**400}}}, "too large"),
    ({"action": "pose", "params": {"angles": {"left_arm": float("nan")}}}, "not a finite"),
    ({"action": "wave", "speed": float("inf")}, "not a finite"),
    ({"action": "w\ud800ve"}, "not valid UTF-8"),
])
def test_numbers_and_text_json_cannot_carry_are_rejected(rig: ServoRig, data: Any,
                                                         named: str) -> None:
    verdict = handle(data, busy=False, rig=rig)
    assert verdict.event == "rejected"
    assert verdict.error is not None and named in verdict.error
    (verdict.action + verdict.error).encode("utf-8")  # the answer can be sent


def test_a_huge_action_is_echoed_short(rig: ServoRig) -> None:
    verdict = handle({"action": "x" * 100_000}, busy=False, rig=rig)
    assert verdict.event == "rejected"
    assert len(verdict.action) < 60 and verdict.error is not None and len(verdict.error) < 400


def test_a_command_whose_id_cannot_be_sent_back_leaves_the_service_idle(
        service: tuple[Movement, FakeClient]) -> None:
    svc, client = service
    svc.on_command(message("movement/command", {"action": "wave"}, envelope_id="\ud800"))
    assert client.on(STATUS) == [] and svc.tally["unsent"] == 1
    good = message("movement/command", {"action": "pose", "params": {
        "angles": {"left_arm": 10}, "duration": 0.05}})
    svc.on_command(good)
    assert good.envelope is not None
    client.wait_for(lambda p: p.correlate == good.envelope.id  # type: ignore[union-attr]
                    and p.data["event"] == "completed")
    assert statuses(client, good.envelope.id) == ["started", "completed"]


def test_a_wildcard_reply_to_costs_the_reply_not_the_motion_thread(
        service: tuple[Movement, FakeClient]) -> None:
    svc, client = service
    pose = {"action": "pose", "params": {"angles": {"left_arm": 10}, "duration": 0.05}}
    bad = message("movement/command", pose, reply_to="bad/+/topic")
    svc.on_command(bad)
    client.wait_for(lambda p: p.data.get("event") == "completed")
    busy = message("movement/command", {"action": "fly"}, reply_to="bad/#")  # on a worker
    svc.on_command(busy)
    assert svc.tally["unfollowed"] == 2 and svc.liveness() is None
    again = message("movement/command", pose, reply_to="system/reply/t")
    svc.on_command(again)
    assert again.envelope is not None
    assert client.wait_for(lambda p: p.topic == "system/reply/t").data["event"] == "completed"


def test_liveness_names_a_dead_motion_thread(service: tuple[Movement, FakeClient]) -> None:
    svc, _ = service
    assert svc.liveness() is None
    svc.motions._jobs.put(None)  # what the thread dying looks like from outside: it is gone
    svc.motions._thread.join(5)
    assert svc.liveness() == "the motion thread has died"


def test_liveness_names_a_motion_far_past_its_planned_end(rig: ServoRig) -> None:
    now = [100.0]
    release = threading.Event()
    client = FakeClient()
    svc = Movement(client, rig, clock=lambda: now[0])  # type: ignore[arg-type]
    rig.run_motion = lambda frames, stop: release.wait(10)  # type: ignore[method-assign,assignment,misc]
    try:
        svc.on_command(message("movement/command", {"action": "wave"}))  # a few seconds
        assert svc.liveness() is None
        now[0] += 60
        assert "'wave' is still running long after its planned end" in (svc.liveness() or "")
        release.set()
        client.wait_for(lambda p: p.data.get("event") == "completed")
        assert svc.liveness() is None
    finally:
        release.set()
        svc.close()


def test_a_reply_to_naming_another_topic_is_never_followed(
        service: tuple[Movement, FakeClient]) -> None:
    """A command is anyone's to send: its reply_to must not make the service publish on
    tts/say or movement/command. The status still goes out, correlated."""
    svc, client = service
    for target in ("tts/say", "movement/command", "system/reply/a/b"):
        cmd = message("movement/command", {"action": "fly"}, reply_to=target)
        svc.on_command(cmd)
        assert cmd.envelope is not None and statuses(client, cmd.envelope.id) == ["rejected"]
    assert {p.topic for p in client.published} == {STATUS}
    assert svc.tally["unfollowed"] == 3


def test_a_command_that_is_no_envelope_is_rejected_where_it_can_be_answered(
        service: tuple[Movement, FakeClient]) -> None:
    svc, client = service
    svc.on_command(garbage("movement/command"))  # no id at all: no one to answer
    bad = dataclasses.replace(garbage("movement/command"), correlate="q-1",
                              reply_to="system/reply/t")
    svc.on_command(bad)
    [status] = client.on(STATUS)
    assert (status.data["event"], status.correlate) == ("rejected", "q-1")
    assert "not an envelope (not JSON)" in status.data["error"]
    assert client.on("system/reply/t")[0].data == status.data
    assert svc.tally["malformed"] == 2


def test_a_stop_sent_after_a_command_stops_it_whichever_is_handled_first(
        service: tuple[Movement, FakeClient]) -> None:
    """Commands and stops travel on different subscriptions (different workers)."""
    svc, client = service
    early = message("movement/command", long_pose())
    svc.on_stop(message("movement/stop", {"reason": "later"}))  # handled first, sent after
    svc.on_command(early)
    assert early.envelope is not None and statuses(client, early.envelope.id) == ["rejected"]
    assert "movement/stop sent after it" in client.on(STATUS)[-1].data["error"]

    # A stop that comes while a command is being started (between its check and its
    # hand-over to the motion thread) must not be undone by that hand-over.
    started = threading.Event()
    publish = client.publish_event

    def hooked(*args: Any, **kwargs: Any) -> Published:
        out = publish(*args, **kwargs)
        if args[2].get("event") == "started" and not started.is_set():
            started.set()
            stopper.start()
            while not svc.motions.stop.is_set():  # the stop got as far as the lock
                threading.Event().wait(0.001)
        return out

    stopper = threading.Thread(target=svc.on_stop, args=(message("movement/stop", {}),))
    client.publish_event = hooked  # type: ignore[method-assign]
    late = message("movement/command", long_pose(duration=20))
    svc.on_command(late)
    stopper.join(5)
    assert late.envelope is not None
    client.wait_for(lambda p: p.correlate == late.envelope.id  # type: ignore[union-attr]
                    and p.data["event"] != "started", timeout=5)
    assert statuses(client, late.envelope.id) == ["started", "stopped"]
