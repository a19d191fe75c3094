"""The hardware layer's errors, one tree so callers can catch what they mean.

::

    HardwareError                      anything the hw layer refuses or fails at
    ├── PinFactoryError  (ValueError)  unknown or unusable pin factory name
    ├── CalibrationError (ValueError)  bad calibration file or values
    ├── PoseError        (ValueError)  angle outside a joint's soft limits, unknown joint
    ├── MotionError      (ValueError)  unknown motion, bad speed, params or duration
    └── StateError       (ValueError)  unknown status LED state

The ``ValueError`` ones are mistakes in the request or the configuration, not
hardware faults, so they also inherit the builtin they resemble (as gpiozero's do).
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "HardwareError",
    "MotionError",
    "PinFactoryError",
    "PoseError",
    "StateError",
]


class HardwareError(Exception):
    """Base of every error raised by :mod:`hw`."""


class PinFactoryError(HardwareError, ValueError):
    """The requested gpiozero pin factory is unknown or cannot be created."""


class CalibrationError(HardwareError, ValueError):
    """A calibration file or value is invalid; the message names file, joint and key."""


class MotionError(HardwareError, ValueError):
    """A motion request is invalid: unknown name, speed out of range, bad params."""


class StateError(HardwareError, ValueError):
    """A status LED state name is unknown."""


class PoseError(HardwareError, ValueError):
    """A pose cannot be reached: the angle is outside the joint's soft limits.

    Attributes:
        joint: the joint's name.
        angle: the rejected angle (``None`` when the joint itself is unknown).
        limits: the joint's ``(soft_min, soft_max)``, or ``None`` for an unknown joint.
    """

    def __init__(
        self,
        message: str,
        *,
        joint: str,
        angle: float | None = None,
        limits: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(message)
        self.joint = joint
        self.angle = angle
        self.limits = limits
