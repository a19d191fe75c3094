"""Property test: movement's ``handle`` gives every command a verdict, whatever it holds.

Commands are drawn around the real ones (known motions, real joints, speeds near the
limits) and far from them (any JSON value, lone surrogates, 400-digit numbers, NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import DEFAULT_CALIBRATION_PATH, MIN_SPEED, MOTION_NAMES, ServoRig, load_calibration
from hw.motions import MAX_POSE_DURATION
from services.movement import handle
from services.topics import MOVEMENT_COMMAND

from .strategies import any_text, data_for, numbers, values


@pytest.fixture(scope="module")
def rig() -> Iterator[ServoRig]:
    factory = MockFactory(pin_class=MockPWMPin)  # module-wide: hypothesis reuses it
    with ServoRig(load_calibration(DEFAULT_CALIBRATION_PATH), pin_factory=factory) as r:
        yield r
    factory.close()
    factory.reset()


JOINTS = ("torso_height", "left_leg", "right_leg", "left_arm", "right_arm")
angles = st.dictionaries(st.sampled_from(JOINTS) | any_text,
                         st.floats(-120, 120) | numbers | values, max_size=5)
speeds = st.floats(0.05, 3.2)  # around the limits 0.1..3
named = st.fixed_dictionaries({"action": st.sampled_from([m for m in MOTION_NAMES if m != "pose"])},
                              optional={"speed": speeds})
pose = st.fixed_dictionaries({"action": st.just("pose"), "params": st.fixed_dictionaries(
    {"angles": st.dictionaries(st.sampled_from(JOINTS), st.floats(-100, 100), min_size=1)},
    optional={"duration": st.floats(0, 35)})}, optional={"speed": speeds})
commands = named | pose | data_for(MOVEMENT_COMMAND, action=st.sampled_from(MOTION_NAMES)
                                   | any_text, speed=speeds | numbers,
                                   params=st.fixed_dictionaries({}, optional={
                                       "angles": angles, "duration": st.floats(0, 40) | numbers}))


@settings(max_examples=400, deadline=None)
@given(data=commands, busy=st.booleans())
def test_handle_never_raises_and_only_runs_what_the_servos_can_do(
        rig: ServoRig, data: Any, busy: bool) -> None:
    verdict = handle(data, busy=busy, rig=rig)
    assert verdict.event in ("run", "rejected", "busy")
    assert len(verdict.action) <= 50 and len(verdict.error or "") <= 320
    (verdict.action + (verdict.error or "")).encode("utf-8")  # the answer can be sent
    if verdict.event != "run":
        assert verdict.error and not verdict.frames
        return
    assert not busy and verdict.action in MOTION_NAMES and verdict.frames
    for frame in verdict.frames:
        assert math.isfinite(frame.duration)
        assert 0 <= frame.duration <= MAX_POSE_DURATION / MIN_SPEED  # the slowest pose
        rig.validate(frame.pose)  # never raises for a pose that was let through
