"""Test support for the hardware tests: a recording mock PWM pin and small calibrations.

``RecordingPWMPin`` is gpiozero's ``MockPWMPin`` plus a condition variable, so a test
can wait (with a timeout) for a background blink to reach the pin instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gpiozero.pins.mock import MockPWMPin

from hw import JointCalibration, RigCalibration


class RecordingPWMPin(MockPWMPin):  # type: ignore[misc]
    """A PWM mock pin that notifies waiters on every state change."""

    def __init__(self, factory: Any, info: Any) -> None:
        self.changed = threading.Condition()
        super().__init__(factory, info)

    def _change_state(self, value: Any) -> bool:
        with self.changed:
            result: bool = super()._change_state(value)
            self.changed.notify_all()
        return result

    def values(self) -> list[float]:
        """Every state the pin has been in, oldest first."""
        return [float(s.state) for s in self.states]

    def wait_for(self, predicate: Callable[[list[float]], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate(values())`` holds; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.values()), timeout)



def joint_cal(name: str = "left_arm", pin: int | None = 12, **kw: Any) -> JointCalibration:
    """A 1 ms..2 ms, -90..90 degree servo (gpiozero's defaults) unless overridden."""
    values: dict[str, Any] = dict(
        min_pulse_width=0.001, max_pulse_width=0.002, min_angle=-90.0, max_angle=90.0,
        neutral=0.0, soft_min=-90.0, soft_max=90.0,
    )
    values.update(kw)
    return JointCalibration(name=name, pin=pin, **values)


def rig_cal(step_rate_hz: float = 50.0) -> RigCalibration:
    """Five TARS joints on 5, 12, 13, 6, 26 with soft limits -60..60."""
    pins = {"torso_height": 5, "left_leg": 12, "right_leg": 13, "left_arm": 6, "right_arm": 26}
    return RigCalibration(
        joints=tuple(joint_cal(n, p, soft_min=-60.0, soft_max=60.0) for n, p in pins.items()),
        step_rate_hz=step_rate_hz,
    )
