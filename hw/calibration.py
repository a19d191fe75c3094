"""Servo calibration: frozen values, loaded from a TOML file (a shipped default or yours).

The file has a ``step_rate_hz`` and one ``[joints.<name>]`` table per servo, each saying
which driver makes its pulses (a GPIO pin through gpiozero, or a PCA9685 channel); see
docs/hardware.md. Every error names the file, the joint and the key, because a wrong
number here moves metal.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CalibrationError
from .pca9685 import ADDRESS_RANGE, ALL_CALL_ADDRESS, CHANNELS, DEFAULT_ADDRESS

__all__ = [
    "DEFAULT_CALIBRATION_PATH",
    "DRIVERS",
    "ENV_CALIBRATION",
    "FRAME_WIDTH",
    "JointCalibration",
    "PCA9685_CALIBRATION_PATH",
    "RigCalibration",
    "TARS_JOINTS",
    "calibration_path_from_env",
    "load_calibration",
]

DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("calibration.toml")
PCA9685_CALIBRATION_PATH = Path(__file__).with_name("calibration-pca9685.toml")
ENV_CALIBRATION = "TARS_CALIBRATION"
FRAME_WIDTH = 0.02  # seconds between servo pulses (50 Hz), gpiozero's default
MAX_GPIO = 27  # BCM numbers on the 40-pin header
DRIVERS = ("gpio", "pca9685")
I2C1_PINS = {2: "SDA", 3: "SCL"}  # I2C bus 1 on the header: a PCA9685 there needs them
TARS_JOINTS = ("torso_height", "left_leg", "right_leg", "left_arm", "right_arm")


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class JointCalibration:
    """One servo: where it is wired, how its pulses map to angles, where it may go.

    ``driver`` is ``"gpio"`` (gpiozero on BCM GPIO ``pin``) or ``"pca9685"`` (``channel``
    0..15 of the board at ``i2c_address`` on I2C bus ``i2c_bus``). Angles are degrees.
    ``min_angle``/``max_angle`` are the angles at ``min_pulse_width``/``max_pulse_width``
    (seconds); ``soft_min``/``soft_max`` are the limits TARS's mechanics allow, inside
    that range; ``neutral`` is the standing pose, taken at start-up. ``inverted`` swaps
    the pulse ends for a mirrored servo.
    """

    name: str
    pin: int | None = None
    min_pulse_width: float = 0.001
    max_pulse_width: float = 0.002
    min_angle: float = -90.0
    max_angle: float = 90.0
    neutral: float = 0.0
    soft_min: float = -90.0
    soft_max: float = 90.0
    inverted: bool = False
    driver: str = "gpio"
    channel: int | None = None
    i2c_bus: int = 1
    i2c_address: int = DEFAULT_ADDRESS

    def __post_init__(self) -> None:
        where = f"joint {self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise CalibrationError(f"joint name must be a non-empty string, got {self.name!r}")
        self._check_output(where)
        for key in ("min_pulse_width", "max_pulse_width", "min_angle", "max_angle",
                    "neutral", "soft_min", "soft_max"):
            value = getattr(self, key)
            if not math.isfinite(value):
                raise CalibrationError(f"{where}: {key} must be a finite number, got {value!r}")
        lo, hi = self.min_pulse_width, self.max_pulse_width
        if lo <= 0:
            raise CalibrationError(f"{where}: min_pulse_width {_fmt(lo)} must be above 0")
        if hi <= lo:
            raise CalibrationError(
                f"{where}: max_pulse_width {_fmt(hi)} must be above min_pulse_width {_fmt(lo)}")
        if hi >= FRAME_WIDTH:
            raise CalibrationError(
                f"{where}: max_pulse_width {_fmt(hi)} must be below the frame width "
                f"{_fmt(FRAME_WIDTH)} s (pulse widths are in seconds)")
        if self.max_angle <= self.min_angle:
            raise CalibrationError(
                f"{where}: max_angle {_fmt(self.max_angle)} must be above "
                f"min_angle {_fmt(self.min_angle)} (use inverted = true to mirror a servo)")
        if self.soft_min < self.min_angle:
            raise CalibrationError(
                f"{where}: soft_min {_fmt(self.soft_min)} is below min_angle "
                f"{_fmt(self.min_angle)}")
        if self.soft_max > self.max_angle:
            raise CalibrationError(
                f"{where}: soft_max {_fmt(self.soft_max)} is above max_angle "
                f"{_fmt(self.max_angle)}")
        if self.soft_max <= self.soft_min:
            raise CalibrationError(
                f"{where}: soft_max {_fmt(self.soft_max)} must be above "
                f"soft_min {_fmt(self.soft_min)}")
        if not self.soft_min <= self.neutral <= self.soft_max:
            raise CalibrationError(
                f"{where}: neutral {_fmt(self.neutral)} is outside the soft limits "
                f"{_fmt(self.soft_min)}..{_fmt(self.soft_max)}")

    def _check_output(self, where: str) -> None:
        if self.driver not in DRIVERS:
            raise CalibrationError(
                f"{where}: driver {self.driver!r} is not one of {', '.join(DRIVERS)}")
        wanted, unwanted = ("pin", "channel") if self.driver == "gpio" else ("channel", "pin")
        if getattr(self, unwanted) is not None:
            raise CalibrationError(
                f"{where}: a {self.driver} joint has a {wanted}, not a {unwanted}")
        for key in (wanted, "i2c_bus", "i2c_address"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CalibrationError(f"{where}: {key} must be an integer, got {value!r}")
        if self.pin is not None and not 0 <= self.pin <= MAX_GPIO:
            raise CalibrationError(f"{where}: pin {self.pin} is not a GPIO number 0..{MAX_GPIO}")
        if self.channel is not None and not 0 <= self.channel < CHANNELS:
            raise CalibrationError(
                f"{where}: channel {self.channel} is not a PCA9685 channel 0..{CHANNELS - 1}")
        if self.i2c_bus < 0:
            raise CalibrationError(f"{where}: i2c_bus {self.i2c_bus} must be 0 or more")
        lo, hi = ADDRESS_RANGE
        address = self.i2c_address
        if not lo <= address <= hi or address == ALL_CALL_ADDRESS:
            raise CalibrationError(
                f"{where}: i2c_address {address:#04x} is not a PCA9685 address: "
                f"{lo:#04x}..{hi:#04x} (0x40 + the A0..A5 jumpers), except "
                f"{ALL_CALL_ADDRESS:#04x}, which every PCA9685 answers")

    @property
    def limits(self) -> tuple[float, float]:
        """``(soft_min, soft_max)``: what :meth:`hw.Joint.set_angle` accepts."""
        return (self.soft_min, self.soft_max)

    @property
    def output(self) -> str:
        """Where the pulses go, for messages: ``GPIO12``, ``PCA9685 0x40 channel 3``."""
        if self.driver == "gpio":
            return f"GPIO{self.pin}"
        return f"PCA9685 on I2C bus {self.i2c_bus} at {self.i2c_address:#04x}, " \
               f"channel {self.channel}"

    def pulse_width(self, angle: float) -> float:
        """The pulse, in seconds, for ``angle``: linear between the calibrated ends
        (the same map gpiozero's ``AngularServo`` applies on a GPIO pin)."""
        fraction = (angle - self.min_angle) / (self.max_angle - self.min_angle)
        if self.inverted:
            fraction = 1 - fraction
        return self.min_pulse_width + fraction * (self.max_pulse_width - self.min_pulse_width)


@dataclass(frozen=True)
class RigCalibration:
    """All of TARS's joints, in file order, and the interpolation step rate."""

    joints: tuple[JointCalibration, ...]
    step_rate_hz: float = 50.0

    def __post_init__(self) -> None:
        rate = self.step_rate_hz
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not (
            math.isfinite(rate) and 0 < rate <= 1000
        ):
            raise CalibrationError(f"step_rate_hz must be a number in (0, 1000], got {rate!r}")
        if not self.joints:
            raise CalibrationError("no joints are calibrated")
        names: set[str] = set()
        outputs: dict[str, str] = {}
        for joint in self.joints:
            if joint.name in names:
                raise CalibrationError(f"joint {joint.name!r} is calibrated twice")
            names.add(joint.name)
            if joint.output in outputs:
                raise CalibrationError(
                    f"joint {joint.name!r}: {joint.output} is already used by joint "
                    f"{outputs[joint.output]!r}")
            outputs[joint.output] = joint.name
        i2c1 = next((j for j in self.joints if j.driver == "pca9685" and j.i2c_bus == 1), None)
        for joint in self.joints:
            if i2c1 is not None and joint.pin in I2C1_PINS:
                raise CalibrationError(
                    f"joint {joint.name!r}: GPIO{joint.pin} is I2C bus 1's "
                    f"{I2C1_PINS[joint.pin]}, which the PCA9685 of joint {i2c1.name!r} needs")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(joint.name for joint in self.joints)

    def joint(self, name: str) -> JointCalibration:
        """The calibration of joint ``name`` (``KeyError`` if there is none)."""
        for joint in self.joints:
            if joint.name == name:
                return joint
        raise KeyError(name)


def calibration_path_from_env(environ: Mapping[str, str] = os.environ) -> Path | None:
    """``$TARS_CALIBRATION`` as a path, or ``None`` (meaning the shipped default)."""
    value = environ.get(ENV_CALIBRATION, "").strip()
    return Path(value) if value else None


_NUMBER_KEYS = ("min_pulse_width", "max_pulse_width", "min_angle", "max_angle",
                "neutral", "soft_min", "soft_max")
_OUTPUT_KEYS = ("driver", "pin", "channel", "i2c_bus", "i2c_address")
_JOINT_KEYS = (*_OUTPUT_KEYS, *_NUMBER_KEYS, "inverted")
_TOP_KEYS = ("joints", "step_rate_hz")


def _unknown(keys: Collection[str], known: tuple[str, ...]) -> str | None:
    extra = sorted(set(keys) - set(known))
    if not extra:
        return None
    return f"unknown key {extra[0]!r} (known: {', '.join(sorted(known))})"


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalibrationError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _joint(name: str, table: Any) -> JointCalibration:
    where = f"joint {name!r}"
    if not isinstance(table, dict):
        raise CalibrationError(f"{where}: must be a table, got {table!r}")
    problem = _unknown(table.keys(), _JOINT_KEYS)
    if problem:
        raise CalibrationError(f"{where}: {problem}")
    output = {key: table[key] for key in _OUTPUT_KEYS if key in table}
    wanted = "channel" if output.get("driver") == "pca9685" else "pin"
    if wanted not in table:
        raise CalibrationError(f"{where}: missing key {wanted!r}")
    nums: dict[str, Any] = {k: _number(where, k, table[k]) for k in _NUMBER_KEYS if k in table}
    nums.setdefault("min_pulse_width", 0.001)
    nums.setdefault("max_pulse_width", 0.002)
    nums.setdefault("min_angle", -90.0)
    nums.setdefault("max_angle", 90.0)
    nums.setdefault("soft_min", nums["min_angle"])
    nums.setdefault("soft_max", nums["max_angle"])
    nums.setdefault("neutral", (nums["soft_min"] + nums["soft_max"]) / 2)
    inverted = table.get("inverted", False)
    if not isinstance(inverted, bool):
        raise CalibrationError(f"{where}: inverted must be true or false, got {inverted!r}")
    return JointCalibration(name=name, inverted=inverted, **output, **nums)


def load_calibration(
    path: str | Path | None = None, *, required: Collection[str] = TARS_JOINTS
) -> RigCalibration:
    """Read a calibration TOML file; ``None`` reads the shipped ``hw/calibration.toml``.

    Args:
        path: the file, or ``None`` for the default (see :func:`calibration_path_from_env`).
        required: joint names that must be present (TARS's five by default).

    Raises:
        CalibrationError: unreadable file, invalid TOML, or a bad value; the message
            starts with the file and names the joint and key.
    """
    file = Path(path) if path is not None else DEFAULT_CALIBRATION_PATH
    label = str(file)
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise CalibrationError(f"{label}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:  # tomllib.TOMLDecodeError, UnicodeDecodeError
        raise CalibrationError(f"{label}: invalid TOML: {exc}") from exc
    try:
        problem = _unknown(data.keys(), _TOP_KEYS)
        if problem:
            raise CalibrationError(problem)
        tables = data.get("joints")
        if not isinstance(tables, dict) or not tables:
            raise CalibrationError("missing [joints.<name>] tables")
        joints = tuple(_joint(name, table) for name, table in tables.items())
        for name in required:
            if name not in tables:
                raise CalibrationError(
                    f"missing joint {name!r} (required: {', '.join(required)})")
        rate = data.get("step_rate_hz", 50.0)
        if isinstance(rate, int) and not isinstance(rate, bool):
            rate = float(rate)
        return RigCalibration(joints=joints, step_rate_hz=rate)
    except CalibrationError as exc:
        raise CalibrationError(f"{label}: {exc}") from None
