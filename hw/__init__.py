"""TARS's hardware layer on gpiozero: servos, motions, wake button, status LED.

Knows pins, nothing of MQTT. Every driver takes a keyword-only ``pin_factory``;
``None`` means gpiozero's own ``Device.pin_factory`` (chosen by gpiozero from
``$GPIOZERO_PIN_FACTORY``; with ``mock`` its pins can do PWM). See docs/hardware.md.
"""

from .button import WakeButton
from .calibration import (
    DEFAULT_CALIBRATION_PATH,
    TARS_JOINTS,
    JointCalibration,
    RigCalibration,
    calibration_path_from_env,
    load_calibration,
)
from .errors import (
    CalibrationError,
    HardwareError,
    MotionError,
    PinFactoryError,
    PoseError,
    StateError,
)
from .led import PATTERNS, STATES, Pattern, StatusLED, pattern_for
from .motions import (
    MAX_SPEED,
    MIN_SPEED,
    MOTION_NAMES,
    MOTIONS,
    Keyframe,
    interpolate,
    plan_motion,
)
from .pins import default_pin_factory
from .servo import Joint, ServoRig

__all__ = [
    "CalibrationError",
    "DEFAULT_CALIBRATION_PATH",
    "HardwareError",
    "Joint",
    "JointCalibration",
    "Keyframe",
    "MAX_SPEED",
    "MIN_SPEED",
    "MOTIONS",
    "MOTION_NAMES",
    "MotionError",
    "PATTERNS",
    "Pattern",
    "PinFactoryError",
    "PoseError",
    "RigCalibration",
    "STATES",
    "ServoRig",
    "StateError",
    "StatusLED",
    "TARS_JOINTS",
    "WakeButton",
    "calibration_path_from_env",
    "default_pin_factory",
    "interpolate",
    "load_calibration",
    "pattern_for",
    "plan_motion",
]
