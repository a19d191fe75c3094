"""TARS's hardware layer: servos (on GPIO pins or a PCA9685 board), motions, wake button,
status LED.

Knows pins, nothing of MQTT. Every driver takes a keyword-only ``pin_factory``;
``None`` means gpiozero's own ``Device.pin_factory`` (chosen by gpiozero from
``$GPIOZERO_PIN_FACTORY``; with ``mock`` its pins can do PWM). PCA9685 joints get their
I2C bus from ``i2c_factory``; :mod:`hw.testing` simulates the board and the bus. See
docs/hardware.md.
"""

from .button import WakeButton
from .calibration import (
    DEFAULT_CALIBRATION_PATH,
    DRIVERS,
    PCA9685_CALIBRATION_PATH,
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
from .joint import Joint
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
from .outputs import PCA9685Boards, ServoOutput
from .pca9685 import PCA9685, I2CBus
from .pins import default_pin_factory
from .servo import ServoRig

__all__ = [
    "CalibrationError",
    "DEFAULT_CALIBRATION_PATH",
    "DRIVERS",
    "HardwareError",
    "I2CBus",
    "Joint",
    "JointCalibration",
    "Keyframe",
    "MAX_SPEED",
    "MIN_SPEED",
    "MOTIONS",
    "MOTION_NAMES",
    "MotionError",
    "PATTERNS",
    "PCA9685",
    "PCA9685Boards",
    "PCA9685_CALIBRATION_PATH",
    "Pattern",
    "PinFactoryError",
    "PoseError",
    "RigCalibration",
    "STATES",
    "ServoOutput",
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
