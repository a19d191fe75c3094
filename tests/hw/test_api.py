"""The public surface the services are written against."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import hw

SERVICE_NAMES = {
    "MOTION_NAMES", "MotionError", "PoseError", "HardwareError", "ServoRig", "plan_motion",
    "load_calibration", "calibration_path_from_env", "default_pin_factory", "WakeButton",
    "StatusLED", "STATES", "StateError",
}


def test_all_is_sorted_and_complete() -> None:
    assert hw.__all__ == sorted(hw.__all__)
    assert SERVICE_NAMES.issubset(hw.__all__)
    for name in hw.__all__:
        assert hasattr(hw, name), name


def test_pin_factory_is_keyword_only_everywhere() -> None:
    for driver in (hw.Joint, hw.ServoRig, hw.WakeButton, hw.StatusLED):
        param = inspect.signature(driver).parameters["pin_factory"]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, driver
        assert param.default is None


def test_hw_takes_only_the_clock_from_tars_mqtt() -> None:
    """hw knows pins, not MQTT: of the client package it uses the time module alone."""
    root = Path(hw.__file__).parent
    used = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used.update(alias.name for alias in node.names)
    assert {name for name in used if name.split(".")[0] == "tars_mqtt"} == {"tars_mqtt.timing"}
