"""Servos on mock PWM pins: pulse values, limits, interpolation and stopping."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from hw import (
    MOTIONS,
    CalibrationError,
    HardwareError,
    Joint,
    JointCalibration,
    Keyframe,
    MotionError,
    PoseError,
    ServoRig,
    interpolate,
    load_calibration,
    plan_motion,
)
from tars_mqtt.timing import ManualClock

from .support import joint_cal, rig_cal


def expected_duty(cal: JointCalibration, angle: float) -> float:
    """The PWM duty value a calibrated servo should get for ``angle`` (50 Hz frames)."""
    fraction = (angle - cal.min_angle) / (cal.max_angle - cal.min_angle)
    if cal.inverted:
        fraction = 1 - fraction
    width = cal.min_pulse_width + fraction * (cal.max_pulse_width - cal.min_pulse_width)
    return width / 0.02


def pin_counts(factory: Any, pins: list[int]) -> dict[int, int]:
    return {p: len(factory.pin(p).states) for p in pins}


# --- Joint -------------------------------------------------------------------------------

def test_joint_min_max_neutral_pulse_values(factory: Any) -> None:
    with Joint(joint_cal(pin=12), pin_factory=factory) as joint:
        pin = factory.pin(12)
        assert pin.frequency == 50
        assert pin.state == pytest.approx(0.075)  # neutral 0 -> 1.5 ms
        joint.set_angle(-90)
        assert pin.state == pytest.approx(0.05)  # 1 ms of 20 ms
        joint.set_angle(90)
        assert pin.state == pytest.approx(0.10)  # 2 ms of 20 ms
        assert joint.angle == 90


def test_joint_uses_its_calibrated_pulse_widths(factory: Any) -> None:
    cal = joint_cal(pin=13, min_pulse_width=0.0005, max_pulse_width=0.0025, neutral=45)
    with Joint(cal, pin_factory=factory) as joint:
        pin = factory.pin(13)
        assert pin.state == pytest.approx(expected_duty(cal, 45))
        joint.set_angle(-90)
        assert pin.state == pytest.approx(0.025)
        joint.set_angle(90)
        assert pin.state == pytest.approx(0.125)


def test_inverted_joint_mirrors_the_pulse(factory: Any) -> None:
    with Joint(joint_cal(pin=12, inverted=True), pin_factory=factory) as joint:
        joint.set_angle(90)
        assert factory.pin(12).state == pytest.approx(0.05)
        joint.set_angle(-90)
        assert factory.pin(12).state == pytest.approx(0.10)


@pytest.mark.parametrize("angle", [-61, 60.5, float("nan"), float("inf")])
def test_joint_rejects_angles_outside_soft_limits(factory: Any, angle: float) -> None:
    cal = joint_cal("left_arm", 12, soft_min=-60, soft_max=60)
    with Joint(cal, pin_factory=factory) as joint:
        before = list(factory.pin(12).states)
        with pytest.raises(PoseError, match=r"joint 'left_arm': angle .* outside its limits "
                                            r"-60\.\.60") as info:
            joint.set_angle(angle)
        assert info.value.joint == "left_arm" and info.value.limits == (-60, 60)
        assert factory.pin(12).states == before
        assert joint.angle == 0


def test_relax_detaches_and_set_angle_reattaches(factory: Any) -> None:
    with Joint(joint_cal(pin=12), pin_factory=factory) as joint:
        joint.relax()
        assert factory.pin(12).frequency is None and not joint.attached
        assert joint.angle == 0  # the last commanded angle is remembered
        joint.set_angle(30)
        assert factory.pin(12).frequency == 50 and joint.attached


def test_joint_close_is_idempotent_and_frees_the_pin(factory: Any) -> None:
    joint = Joint(joint_cal(pin=12), pin_factory=factory)
    joint.close()
    joint.close()
    assert joint.closed
    with pytest.raises(HardwareError, match="closed"):
        joint.set_angle(0)
    with Joint(joint_cal(pin=12), pin_factory=factory):
        pass


def test_joint_needs_a_pwm_pin() -> None:
    plain = MockFactory()  # MockPin: no PWM, what gpiozero's own 'mock' default gives
    with pytest.raises(HardwareError, match="joint 'left_arm': cannot drive a servo on GPIO12"):
        Joint(joint_cal(pin=12), pin_factory=plain)


# --- ServoRig: moves ---------------------------------------------------------------------

def test_rig_starts_at_neutral(factory: Any) -> None:
    with ServoRig(rig_cal(), pin_factory=factory, clock=ManualClock()) as rig:
        assert list(rig.joints) == ["torso_height", "left_leg", "right_leg", "left_arm",
                                    "right_arm"]
        assert rig.angles() == {name: 0.0 for name in rig.joints}
        assert rig.joints["left_arm"].name == "left_arm"


def test_move_to_interpolates_at_the_step_rate(factory: Any) -> None:
    clock = ManualClock()
    with ServoRig(rig_cal(step_rate_hz=50), pin_factory=factory, clock=clock) as rig:
        held = pin_counts(factory, [5, 13, 26])
        written = len(factory.pin(6).states)
        assert rig.move_to({"left_arm": 60, "left_leg": -30}, duration=1.0) is True
        assert clock.steps == 50
        assert clock.time == pytest.approx(1.0)
        assert rig.angles()["left_arm"] == 60 and rig.angles()["left_leg"] == -30
        arm = factory.pin(6).values()[written - 1:]  # from neutral on
        assert len(arm) == 1 + 50  # one write per step
        assert arm == sorted(arm)  # smooth, one way
        assert arm[-1] == pytest.approx(expected_duty(joint_cal(), 60))
        assert pin_counts(factory, [5, 13, 26]) == held  # joints not in the pose hold


def test_zero_duration_is_one_step(factory: Any) -> None:
    clock = ManualClock()
    with ServoRig(rig_cal(), pin_factory=factory, clock=clock) as rig:
        assert rig.move_to({"right_arm": 10}, 0) is True
        assert rig.angles()["right_arm"] == 10
        assert clock.steps == 0  # nothing to wait for


def test_stop_event_ends_move_within_one_step(factory: Any) -> None:
    stop = threading.Event()
    seen: dict[str, Any] = {}

    def on_step(n: int) -> None:
        if n == 10:  # "during" the 10th wait, i.e. after 9 steps were written
            stop.set()
            seen["arm"] = list(factory.pin(6).states)

    clock = ManualClock(on_step=on_step)
    with ServoRig(rig_cal(), pin_factory=factory, clock=clock) as rig:
        assert rig.move_to({"left_arm": 60}, 1.0, stop) is False
        assert clock.steps == 10  # the wait returned at once: no further step
        assert factory.pin(6).states == seen["arm"]  # no pin moved after the stop
        expected = interpolate({"left_arm": 0.0}, {"left_arm": 60.0}, 50)[8]["left_arm"]
        assert rig.angles()["left_arm"] == pytest.approx(expected)


def test_already_set_stop_event_moves_nothing(factory: Any) -> None:
    stop = threading.Event()
    stop.set()
    clock = ManualClock()
    with ServoRig(rig_cal(), pin_factory=factory, clock=clock) as rig:
        before = pin_counts(factory, [5, 6, 12, 13, 26])
        assert rig.move_to({"left_arm": 60}, 1.0, stop) is False
        assert rig.move_to({"left_arm": 60}, 0, stop) is False
        assert pin_counts(factory, [5, 6, 12, 13, 26]) == before
        assert clock.steps <= 1


def test_stop_event_interrupts_a_real_clock_wait(factory: Any) -> None:
    """With the real clock the wait between steps is the stop event's own wait."""
    stop = threading.Event()
    result: list[bool] = []
    with ServoRig(rig_cal(step_rate_hz=0.1), pin_factory=factory) as rig:  # a 10 s step
        mover = threading.Thread(target=lambda: result.append(
            rig.move_to({"left_arm": 60}, 60.0, stop)))
        mover.start()
        stop.set()
        mover.join(timeout=5)  # far below the 10 s step: only an early return passes
        assert not mover.is_alive()
        assert result == [False]


def test_out_of_range_pose_names_the_joint_and_moves_nothing(factory: Any) -> None:
    with ServoRig(rig_cal(), pin_factory=factory, clock=ManualClock()) as rig:
        before = pin_counts(factory, [5, 6, 12, 13, 26])
        with pytest.raises(PoseError, match=r"joint 'right_arm': angle 100 is outside its "
                                            r"limits -60\.\.60") as info:
            rig.move_to({"left_arm": 10, "right_arm": 100}, 1.0)
        assert (info.value.joint, info.value.angle, info.value.limits) == ("right_arm", 100,
                                                                           (-60, 60))
        with pytest.raises(PoseError, match="unknown joint 'tail'"):
            rig.move_to({"tail": 0}, 1.0)
        assert pin_counts(factory, [5, 6, 12, 13, 26]) == before
        assert rig.angles()["left_arm"] == 0


def test_bad_duration_is_rejected(factory: Any) -> None:
    with ServoRig(rig_cal(), pin_factory=factory, clock=ManualClock()) as rig:
        for duration in (-1, float("nan"), "1"):
            with pytest.raises(MotionError, match="duration"):
                rig.move_to({"left_arm": 1}, duration)  # type: ignore[arg-type]


# --- ServoRig: motions -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MOTIONS))
def test_motion_ends_with_every_joint_at_its_last_keyframe(factory: Any, name: str) -> None:
    cal = load_calibration()
    with ServoRig(cal, pin_factory=factory, clock=ManualClock()) as rig:
        rig.move_to({"left_arm": 12, "torso_height": -7}, 0.2)  # start away from neutral
        start = rig.angles()
        frames = plan_motion(name, neutral=rig.neutral_pose())
        assert rig.run_motion(frames) is True
        for joint in cal.joints:
            mentions = [f.pose[joint.name] for f in frames if joint.name in f.pose]
            expected = mentions[-1] if mentions else start[joint.name]
            assert rig.angles()[joint.name] == pytest.approx(expected)
            assert factory.pin(joint.pin).state == pytest.approx(
                expected_duty(joint, expected))


def test_perform_plans_around_neutral(factory: Any) -> None:
    clock = ManualClock()
    with ServoRig(load_calibration(), pin_factory=factory, clock=clock) as rig:
        assert rig.perform("pose", speed=2.0, params={"angles": {"left_arm": 40},
                                                      "duration": 1.0}) is True
        assert rig.angles()["left_arm"] == 40
        assert clock.time == pytest.approx(0.5)
        with pytest.raises(MotionError, match="unknown motion"):
            rig.perform("moonwalk")


def test_run_motion_validates_every_keyframe_first(factory: Any) -> None:
    frames = [Keyframe({"left_arm": 30}, 0.5), Keyframe({"left_leg": 90}, 0.5)]
    with ServoRig(rig_cal(), pin_factory=factory, clock=ManualClock()) as rig:
        before = pin_counts(factory, [5, 6, 12, 13, 26])
        with pytest.raises(PoseError, match="joint 'left_leg'"):
            rig.run_motion(frames)
        assert pin_counts(factory, [5, 6, 12, 13, 26]) == before


def test_stopped_motion_skips_the_remaining_keyframes(factory: Any) -> None:
    stop = threading.Event()
    clock = ManualClock(on_step=lambda n: stop.set() if n == 30 else None)
    frames = [Keyframe({"left_arm": 30}, 0.5), Keyframe({"right_arm": 30}, 0.5)]
    with ServoRig(rig_cal(), pin_factory=factory, clock=clock) as rig:
        assert rig.run_motion(frames, stop) is False
        assert rig.angles()["left_arm"] == 30  # first keyframe: 25 steps, done
        assert rig.angles()["right_arm"] < 30
        assert clock.steps == 30


# --- ServoRig: lifecycle -----------------------------------------------------------------

def test_relax_and_close(factory: Any) -> None:
    rig = ServoRig(rig_cal(), pin_factory=factory, clock=ManualClock())
    rig.relax()
    assert all(factory.pin(p).frequency is None for p in (5, 6, 12, 13, 26))
    assert rig.move_to({"left_arm": 5}, 0.1) is True  # moving re-attaches
    assert factory.pin(6).frequency == 50
    rig.close()
    rig.close()
    assert rig.closed
    with pytest.raises(HardwareError, match="closed"):
        rig.move_to({"left_arm": 0}, 0.1)


def test_failed_rig_releases_the_joints_it_opened(factory: Any) -> None:
    with Joint(joint_cal("other", 12), pin_factory=factory):  # left_leg's pin is taken
        with pytest.raises(HardwareError, match="joint 'left_leg'"):
            ServoRig(rig_cal(), pin_factory=factory)
        with Joint(joint_cal("torso", 5), pin_factory=factory):  # torso_height's pin is free
            pass


def test_from_env(tmp_path: Path) -> None:
    env = {"GPIOZERO_PIN_FACTORY": "mock"}
    with ServoRig.from_env(env, clock=ManualClock()) as rig:
        assert set(rig.joints) == set(load_calibration().names)
    with pytest.raises(CalibrationError, match="cannot read"):
        ServoRig.from_env({**env, "TARS_CALIBRATION": str(tmp_path / "missing.toml")})
