"""TARS's :class:`ServoRig`: its named joints, moved together.

Every request is checked against the soft limits before any pin moves; moves are
interpolated at the calibration's fixed step rate and end within one step of a set
stop event, because a stop on a walking robot must be prompt.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

from gpiozero.pins import Factory

from tars_mqtt.timing import Clock, MonotonicClock

from .calibration import (
    RigCalibration,
    calibration_path_from_env,
    load_calibration,
)
from .errors import HardwareError, MotionError, PoseError
from .joint import Joint
from .motions import Keyframe, interpolate, plan_motion, step_count
from .outputs import PCA9685Boards, close_all
from .pca9685 import I2CBus

__all__ = ["ServoRig"]


class ServoRig:
    """TARS's named joints, moved together by smooth, interruptible interpolation.

    One move at a time: :meth:`move_to`, :meth:`run_motion`, :meth:`relax` and
    :meth:`close` hold a lock, so from another thread set the move's stop event first.
    """

    def __init__(self, calibration: RigCalibration, *, pin_factory: Factory | None = None,
                 i2c_factory: Callable[[int], I2CBus] | None = None,
                 clock: Clock | None = None) -> None:
        self._calibration = calibration
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._lock = threading.RLock()
        self._closed = False
        self._boards = PCA9685Boards(i2c_factory=i2c_factory, clock=self._clock)
        joints: dict[str, Joint] = {}
        try:
            for cal in calibration.joints:
                joints[cal.name] = Joint(cal, pin_factory=pin_factory, boards=self._boards)
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to see
                close_all([*joints.values(), self._boards])
            raise
        self._joints = MappingProxyType(joints)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *,
                 pin_factory: Factory | None = None,
                 i2c_factory: Callable[[int], I2CBus] | None = None,
                 clock: Clock | None = None) -> ServoRig:
        """A rig from ``$TARS_CALIBRATION`` (else the shipped file); the pins are
        gpiozero's (``$GPIOZERO_PIN_FACTORY``) unless ``pin_factory`` is given."""
        calibration = load_calibration(calibration_path_from_env(environ))
        return cls(calibration, pin_factory=pin_factory, i2c_factory=i2c_factory,
                   clock=clock)

    @property
    def calibration(self) -> RigCalibration:
        return self._calibration

    @property
    def joints(self) -> Mapping[str, Joint]:
        """The joints by name, e.g. ``rig.joints["left_arm"]``."""
        return self._joints

    @property
    def closed(self) -> bool:
        return self._closed

    def angles(self) -> dict[str, float]:
        """Every joint's last commanded angle."""
        return {name: joint.angle for name, joint in self._joints.items()}

    def neutral_pose(self) -> dict[str, float]:
        """Every joint's calibrated neutral angle (the base of the relative motions)."""
        return {name: joint.calibration.neutral for name, joint in self._joints.items()}

    def validate(self, pose: Mapping[str, float]) -> None:
        """Raise :class:`PoseError` for an unknown joint or an angle out of its limits."""
        for name, angle in pose.items():
            joint = self._joints.get(name)
            if joint is None:
                raise PoseError(
                    f"unknown joint {name!r} (known: {', '.join(self._joints)})", joint=name)
            joint.validate(angle)

    def _check_open(self) -> None:
        if self._closed:
            raise HardwareError("servo rig is closed")

    def _wait_until(self, deadline: float, stop_event: threading.Event | None) -> bool:
        """Wait for the next step; True if the stop event is set (then at once)."""
        remaining = deadline - self._clock.now()
        if stop_event is None:
            if remaining > 0:
                self._clock.sleep(remaining)
            return False
        if remaining <= 0:
            return stop_event.is_set()
        return self._clock.wait(stop_event, remaining)

    def move_to(self, pose: Mapping[str, float], duration: float,
                stop_event: threading.Event | None = None) -> bool:
        """Move the named joints from where they are to ``pose`` over ``duration`` s.

        Steps come at ``step_rate_hz``; joints not in ``pose`` hold.

        Returns:
            True when the pose is reached, False when ``stop_event`` was set (the
            joints stay where the last step put them).

        Raises:
            PoseError: before anything moves, for an unknown joint or out-of-range angle.
            MotionError: ``duration`` is not a number >= 0.
        """
        self.validate(pose)
        if isinstance(duration, bool) or not isinstance(duration, int | float) or not (
            math.isfinite(duration) and duration >= 0
        ):
            raise MotionError(f"duration {duration!r} must be a number >= 0")
        with self._lock:
            self._check_open()
            target = {name: float(angle) for name, angle in pose.items()}
            steps = step_count(duration, self._calibration.step_rate_hz)
            interval = duration / steps
            poses = interpolate(self.angles(), target, steps)
            t0 = self._clock.now()
            for i, step_pose in enumerate(poses, 1):
                if self._wait_until(t0 + i * interval, stop_event):
                    return False
                for name, angle in step_pose.items():
                    joint = self._joints[name]
                    if angle != joint.angle or not joint.attached:
                        joint.set_angle(angle)
            return True

    def run_motion(self, keyframes: Iterable[Keyframe],
                   stop_event: threading.Event | None = None) -> bool:
        """Play keyframes in order; every one is validated before anything moves.

        Returns True when all completed, False when stopped.
        """
        frames = list(keyframes)
        for frame in frames:
            self.validate(frame.pose)
        with self._lock:
            return all(self.move_to(f.pose, f.duration, stop_event) for f in frames)

    def perform(self, name: str, *, speed: float = 1.0, params: Mapping[str, Any] | None = None,
                stop_event: threading.Event | None = None) -> bool:
        """Plan motion ``name`` around this rig's neutral pose and run it.

        Raises:
            MotionError: unknown motion, bad speed or params.
            PoseError: the motion would leave a joint's limits.
        """
        frames = plan_motion(name, speed, params, neutral=self.neutral_pose())
        return self.run_motion(frames, stop_event)

    def relax(self) -> None:
        """Detach every servo (no pulses): TARS goes limp."""
        with self._lock:
            for joint in self._joints.values():
                joint.relax()

    def close(self) -> None:
        """Release every pin and board. Safe to call more than once.

        Raises:
            HardwareError: a bus failed while turning outputs off; everything else is
                closed all the same.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            close_all([*self._joints.values(), self._boards])

    def __enter__(self) -> ServoRig:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ", ".join(self._joints)
        return f"<ServoRig {state}>"

