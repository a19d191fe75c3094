"""Servo calibration: frozen values, loaded from a TOML file (a shipped default or yours).

The file has a ``step_rate_hz`` and one ``[joints.<name>]`` table per servo; see
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

__all__ = [
    "DEFAULT_CALIBRATION_PATH",
    "ENV_CALIBRATION",
    "FRAME_WIDTH",
    "JointCalibration",
    "RigCalibration",
    "TARS_JOINTS",
    "calibration_path_from_env",
    "load_calibration",
]

DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("calibration.toml")
ENV_CALIBRATION = "TARS_CALIBRATION"
FRAME_WIDTH = 0.02  # seconds between servo pulses (50 Hz), gpiozero's default
MAX_GPIO = 27  # BCM numbers on the 40-pin header
TARS_JOINTS = ("torso_height", "left_leg", "right_leg", "left_arm", "right_arm")


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class JointCalibration:
    """One servo: where it is wired, how its pulses map to angles, where it may go.

    Angles are degrees. ``min_angle``/``max_angle`` are the angles at
    ``min_pulse_width``/``max_pulse_width`` (seconds); ``soft_min``/``soft_max`` are
    the limits TARS's mechanics allow, inside that range; ``neutral`` is the standing
    pose, taken at start-up. ``inverted`` swaps the pulse ends for a mirrored servo.
    """

    name: str
    pin: int
    min_pulse_width: float = 0.001
    max_pulse_width: float = 0.002
    min_angle: float = -90.0
    max_angle: float = 90.0
    neutral: float = 0.0
    soft_min: float = -90.0
    soft_max: float = 90.0
    inverted: bool = False

    def __post_init__(self) -> None:
        where = f"joint {self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise CalibrationError(f"joint name must be a non-empty string, got {self.name!r}")
        if isinstance(self.pin, bool) or not isinstance(self.pin, int):
            raise CalibrationError(f"{where}: pin must be an integer, got {self.pin!r}")
        if not 0 <= self.pin <= MAX_GPIO:
            raise CalibrationError(f"{where}: pin {self.pin} is not a GPIO number 0..{MAX_GPIO}")
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

    @property
    def limits(self) -> tuple[float, float]:
        """``(soft_min, soft_max)``: what :meth:`hw.Joint.set_angle` accepts."""
        return (self.soft_min, self.soft_max)


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
        pins: dict[int, str] = {}
        for joint in self.joints:
            if joint.name in names:
                raise CalibrationError(f"joint {joint.name!r} is calibrated twice")
            names.add(joint.name)
            if joint.pin in pins:
                raise CalibrationError(
                    f"joint {joint.name!r}: pin {joint.pin} is already used by joint "
                    f"{pins[joint.pin]!r}")
            pins[joint.pin] = joint.name

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
_JOINT_KEYS = ("pin", *_NUMBER_KEYS, "inverted")
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
    if "pin" not in table:
        raise CalibrationError(f"{where}: missing key 'pin'")
    pin = table["pin"]
    if isinstance(pin, bool) or not isinstance(pin, int):
        raise CalibrationError(f"{where}: pin must be an integer, got {pin!r}")
    nums = {key: _number(where, key, table[key]) for key in _NUMBER_KEYS if key in table}
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
    return JointCalibration(name=name, pin=pin, inverted=inverted, **nums)


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
