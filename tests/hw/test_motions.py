"""Motions are data; planning and interpolation are pure (no pins here)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from hw import (
    MOTION_NAMES,
    MOTIONS,
    HardwareError,
    Keyframe,
    MotionError,
    interpolate,
    load_calibration,
    plan_motion,
)
from hw.motions import ease, step_count

REQUIRED = ("reset", "step_forward", "step_backward", "turn_left", "turn_right", "wave",
            "bow", "laugh", "balance", "pose")


def test_all_required_motions_exist() -> None:
    assert set(REQUIRED) == set(MOTION_NAMES)
    assert list(MOTION_NAMES) == sorted(MOTION_NAMES)


@pytest.mark.parametrize("name", sorted(MOTIONS))
def test_every_motion_fits_the_shipped_soft_limits(name: str) -> None:
    cal = load_calibration()
    neutral = {j.name: j.neutral for j in cal.joints}
    for frame in plan_motion(name, neutral=neutral):
        assert frame.duration > 0
        for joint, angle in frame.pose.items():
            lo, hi = cal.joint(joint).limits
            assert lo <= angle <= hi, (name, joint, angle)


def test_reset_returns_every_joint_to_neutral() -> None:
    neutral = {"torso_height": 5.0, "left_leg": -3.0, "right_leg": 2.0, "left_arm": 10.0,
               "right_arm": 0.0}
    [frame] = plan_motion("reset", neutral=neutral)
    assert dict(frame.pose) == neutral


def test_motion_angles_are_relative_to_neutral() -> None:
    plain = plan_motion("wave")
    shifted = plan_motion("wave", neutral={"right_arm": 5.0})
    for a, b in zip(plain, shifted, strict=True):
        assert b.pose["right_arm"] == a.pose["right_arm"] + 5.0


@pytest.mark.parametrize("speed", [0.1, 0.5, 2.0, 3.0])
def test_speed_scales_durations(speed: float) -> None:
    base = plan_motion("step_forward")
    fast = plan_motion("step_forward", speed)
    assert [f.pose for f in fast] == [b.pose for b in base]
    for f, b in zip(fast, base, strict=True):
        assert f.duration == pytest.approx(b.duration / speed)


@pytest.mark.parametrize("speed", [0, -1, 0.05, 3.5, math.nan, math.inf, True, "fast", None])
def test_bad_speed_is_rejected_naming_it(speed: Any) -> None:
    with pytest.raises(MotionError, match=r"speed .* is out of range 0\.1\.\.3\.0") as info:
        plan_motion("wave", speed)
    assert repr(speed) in str(info.value)


def test_unknown_motion_lists_the_known_ones() -> None:
    with pytest.raises(MotionError, match="unknown motion 'moonwalk'") as info:
        plan_motion("moonwalk")
    for name in REQUIRED:
        assert name in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, HardwareError)


def test_pose_takes_explicit_absolute_angles() -> None:
    [frame] = plan_motion("pose", 2.0, {"angles": {"left_arm": 30, "right_arm": -15},
                                         "duration": 1.5}, neutral={"left_arm": 10.0})
    assert dict(frame.pose) == {"left_arm": 30.0, "right_arm": -15.0}
    assert frame.duration == pytest.approx(0.75)
    [default] = plan_motion("pose", params={"angles": {"left_arm": 0}})
    assert default.duration == 1.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (None, "needs params"),
        ({"duration": 1}, "needs params"),
        ({"angles": {}}, "angles must be a non-empty mapping"),
        ({"angles": [1, 2]}, "angles must be a non-empty mapping"),
        ({"angles": {"left_arm": "up"}}, "must be a number"),
        ({"angles": {"left_arm": 1}, "duration": -1}, "duration -1 is out of range"),
        ({"angles": {"left_arm": 1}, "speed": 2}, "unknown param 'speed'"),
    ],
)
def test_bad_pose_params(params: Any, message: str) -> None:
    with pytest.raises(MotionError, match=message):
        plan_motion("pose", params=params)


def test_other_motions_take_no_params() -> None:
    with pytest.raises(MotionError, match="motion 'wave' takes no params"):
        plan_motion("wave", params={"times": 3})
    assert plan_motion("wave", params={}) == plan_motion("wave")


def test_keyframes_are_immutable_and_checked() -> None:
    frame = Keyframe({"left_arm": 1}, 0.5)
    with pytest.raises(TypeError):
        frame.pose["left_arm"] = 2  # type: ignore[index]
    with pytest.raises(MotionError, match="duration"):
        Keyframe({"left_arm": 1}, -0.1)
    with pytest.raises(MotionError, match="must be a number"):
        Keyframe({"left_arm": math.nan}, 0.1)


def test_step_count() -> None:
    assert step_count(1.0, 50) == 50
    assert step_count(0.3, 50) == 15
    assert step_count(0.0, 50) == 1
    assert step_count(0.001, 50) == 1


def test_interpolate_ends_exactly_on_target_and_eases() -> None:
    start = {"left_arm": 0.0, "right_arm": 10.0, "left_leg": 3.0}
    target = {"left_arm": 90.0, "right_arm": 10.0}
    poses = interpolate(start, target, 10)
    assert len(poses) == 10
    assert poses[-1] == target
    assert all(set(p) == set(target) for p in poses)  # held joints are not sent
    arm = [0.0] + [p["left_arm"] for p in poses]
    deltas = [b - a for a, b in zip(arm, arm[1:], strict=False)]
    assert all(d > 0 for d in deltas)  # monotonic
    assert deltas[0] < deltas[4] and deltas[-1] < deltas[5]  # gentle start and stop
    assert all(p["right_arm"] == 10.0 for p in poses)
    assert ease(0) == 0 and ease(1) == 1 and ease(0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        interpolate(start, target, 0)
